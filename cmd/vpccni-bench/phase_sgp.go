package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
)

// keySGP is the security-groups-for-pods figure.
const keySGP = "sgp_branch_ready"

func sgpFigure() bench.Figure {
	return bench.Figure{
		ID: 10, Key: keySGP, Title: "security groups for pods: pod creation to branch ENI ready, 20 pods",
		Method: prose(`go test -run '^$' -bench 'BenchmarkBranchReady$' -benchtime 1x ./pkg/resourcecontroller/: the resource
			controller against a real kube-apiserver and vpcsim (EC2 latency CreateNetworkInterface 400 ms,
			AssociateTrunkInterface 200 ms, DescribeNetworkInterfaces 100 ms); 20 matching pods created at once on
			one m5.2xlarge; time from the pod's creation to its vpc.amazonaws.com/pod-eni annotation (when ipamd can
			wire it). Needs VPC_CNI_KUBE_APISERVER and VPC_CNI_ETCD (scripts/test.sh sets them).`),
	}
}

// phaseSGP measures figure 10 with the resource controller's benchmark.
func (r *run) phaseSGP(ctx context.Context) {
	f := sgpFigure()
	if r.cfg.Quick {
		r.fail(f, fmt.Errorf("skipped (-quick): it builds and runs a Go benchmark against a kube-apiserver"))
		return
	}
	if os.Getenv("VPC_CNI_KUBE_APISERVER") == "" || os.Getenv("VPC_CNI_ETCD") == "" {
		r.fail(f, fmt.Errorf("skipped: VPC_CNI_KUBE_APISERVER and VPC_CNI_ETCD must name kube-apiserver and etcd"))
		return
	}
	r.progressf("figure 10: security groups for pods, 20 branch pods")
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "BenchmarkBranchReady$", "-benchtime", "1x", "./pkg/resourcecontroller/")
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
	for _, b := range results {
		if b.Name != "BenchmarkBranchReady" {
			continue
		}
		for _, m := range []string{"p50-ms", "p99-ms"} {
			if v, ok := b.Metrics[m]; ok {
				f.Values = append(f.Values, bench.Value{Name: "branch ready " + m[:3], Value: v, Unit: "ms"})
			}
		}
	}
	if len(f.Values) != 2 {
		r.fail(f, fmt.Errorf("no BenchmarkBranchReady p50/p99 in the output: %s", tail(stdout.String(), 400)))
		return
	}
	r.put(f)
}
