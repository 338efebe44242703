package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
)

func datastoreFigure() bench.Figure {
	return bench.Figure{
		ID: 9, Key: keyDatastore, Title: "datastore assign+unassign",
		Method: prose(`go test -run '^$' -bench 'BenchmarkAssignUnassign$' -benchtime <n>x ./pkg/ipamd/datastore/ (one Assign
			and one Unassign per op, no checkpoint file, cooldown off), ns/op per pool size, for secondary-IP and
			prefix mode. Runs alone, after the local VPC is gone.`),
	}
}

// phaseDatastore measures figure 9 with the datastore's Go benchmark.
func (r *run) phaseDatastore(ctx context.Context) {
	f := datastoreFigure()
	if r.cfg.GoBenchTime != "" {
		f.Method = strings.Replace(f.Method, "<n>x", r.cfg.GoBenchTime, 1)
	} else {
		r.fail(f, fmt.Errorf("skipped (-gobench=false)"))
		return
	}
	r.progressf("figure 9: datastore Go benchmark (-benchtime %s)", r.cfg.GoBenchTime)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "BenchmarkAssignUnassign$",
		"-benchtime", r.cfg.GoBenchTime, "./pkg/ipamd/datastore/")
	cmd.Dir = r.cfg.RepoDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		r.fail(f, fmt.Errorf("go test: %w: %s%s", err, tail(stdout.String(), 400), tail(stderr.String(), 400)))
		return
	}
	results, err := bench.ParseGoBench(&stdout)
	if err != nil {
		r.fail(f, err)
		return
	}
	for _, mode := range []string{"secondary-ipv4", "prefix-ipv4"} {
		for _, size := range []int{16, 256, 4096} {
			name := fmt.Sprintf("BenchmarkAssignUnassign/%s/addrs=%d/cooldown=false", mode, size)
			for _, b := range results {
				if b.Name == name {
					f.Values = append(f.Values, bench.Value{Name: fmt.Sprintf("%s, %d addresses", mode, size), Value: b.Metrics["ns/op"], Unit: "ns/op"})
				}
			}
		}
	}
	if len(f.Values) == 0 {
		r.fail(f, fmt.Errorf("no BenchmarkAssignUnassign results in the output: %s", tail(stdout.String(), 400)))
		return
	}
	r.put(f)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
