package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

func TestSideBySideFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // "" = valid
	}{
		{nil, ""},
		{[]string{"-compare-ipamd", "/x/ipamd", "-compare-plugin", "/x/aws-cni"}, ""},
		{[]string{"-compare-ipamd", "/x/ipamd"}, `-compare-plugin ""`},
		{[]string{"-compare-plugin", "/x/aws-cni"}, "give both or neither"},
		// figures 1-13 side by side without the scenario
		{[]string{"-compare-ipamd", "/x/ipamd", "-compare-plugin", "/x/aws-cni", "-sidebyside=false"}, ""},
		{[]string{"-figures=false", "-sidebyside=false"}, "nothing to measure"},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("parseFlags(%q) = %v, want %q", tc.args, err, tc.want)
		}
	}
	o, _ := parseFlags([]string{"-compare-ipamd", "/nonexistent/ipamd", "-compare-plugin", "/nonexistent/aws-cni"}, io.Discard)
	if _, err := o.sbs.compareBinaries(); err == nil || !strings.Contains(err.Error(), "/nonexistent/ipamd") {
		t.Errorf("missing compare ipamd: %v, want an error naming it", err)
	}
}

func TestSideBySideTable(t *testing.T) {
	runs := []sbsRun{
		{Agent: "ours", Round: 1, Calls: map[string]int64{"AssignPrivateIpAddresses": 2}, Total: 10, ChurnIdleMean: 7, AllDone: 3 * time.Second},
		{Agent: "compare", Round: 1, Calls: map[string]int64{"AssignPrivateIpAddresses": 4, "DetachNetworkInterface": 1}, Total: 20, ChurnIdleMean: 21, AllDone: 6 * time.Second},
	}
	cfg := defaultSBSConfig(true)
	cfg.Compare = &localvpc.AgentBinaries{IPAMD: "/their/ipamd", Plugin: "/their/aws-cni"}
	var b bytes.Buffer
	if err := writeSBSTable(&b, runs, cfg); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ratio ours/compare", "/their/ipamd", "EC2 calls, whole scenario          10  20  0.50", "DetachNetworkInterface", "churn mean         7   21  0.33"} {
		if !strings.Contains(strings.Join(strings.Fields(b.String()), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	f := sbsFigure(runs, cfg, nil)
	if v, ok := f.Get("ratio EC2 calls, whole scenario"); !ok || v.Value != 0.5 {
		t.Errorf("figure ratio = %+v, %v; want 0.5", v, ok)
	}

	cfg.Compare = nil
	b.Reset()
	if err := writeSBSTable(&b, runs[:1], cfg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "OURS ALONE") || strings.Contains(b.String(), "ratio ours/compare") {
		t.Errorf("ours alone: the table must say so and have no ratio:\n%s", b.String())
	}
	if f := sbsFigure(runs[:1], cfg, nil); !strings.Contains(f.Method, "ours alone") {
		t.Errorf("figure method %q does not say ours alone", f.Method)
	}
}

// The compare plumbing, with our own binaries given as the "compare"
// agent: both run on fresh nodes, interleaved, wire every pod, and the
// ratio figure is there; nothing of the local VPCs is left.
func TestPrivilegedSideBySideOursAsCompare(t *testing.T) {
	testutil.Privileged(t)
	if _, err := os.Stat(filepath.Join(localvpc.DefaultRefPluginDir, "portmap")); err != nil {
		t.Skipf("reference CNI plugins missing (%v): apt-get install containernetworking-plugins", err)
	}
	ours, err := localvpc.ProjectBinaries(buildBinaries(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultSBSConfig(true)
	cfg.Pods, cfg.ChurnLive, cfg.Churn = 3, 2, 3*time.Second
	cfg.Ours, cfg.Compare = ours, &ours
	cfg.WorkDir = t.TempDir()
	var progress bytes.Buffer
	cfg.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var prefixes []string
	cfg.OnVPC = func(v *localvpc.VPC) { prefixes = append(prefixes, dataplane.RunPrefix(v.RunID)) }
	runs, err := sideBySide(ctx, cfg)
	if err != nil {
		t.Fatalf("side by side: %v\n%s", err, progress.String())
	}
	if len(runs) != 2 || runs[0].Agent != "ours" || runs[1].Agent != "compare" {
		t.Fatalf("runs %+v, want ours then compare", runs)
	}
	for _, r := range runs {
		if r.Total == 0 || r.Calls["AssignPrivateIpAddresses"]+r.Calls["CreateNetworkInterface"] == 0 || r.Add.N < cfg.Pods || r.AllDone <= 0 {
			t.Errorf("%s: %d EC2 calls %v, %d ADDs, all done %s: want a pool built and every pod wired", r.Agent, r.Total, r.Calls, r.Add.N, r.AllDone)
		}
	}
	f := sbsFigure(runs, cfg, nil)
	if _, ok := f.Get("ratio EC2 calls, whole scenario"); !ok {
		t.Errorf("no ratio in the figure: %+v", f.Values)
	}
	if len(prefixes) != 2 {
		t.Errorf("%d local VPCs, want a fresh one per run (2)", len(prefixes))
	}
	for _, p := range prefixes {
		if left, _ := dataplane.ListNamespaces(p); len(left) > 0 {
			t.Errorf("namespaces left behind: %v", left)
		}
	}
}

// A supplied agent that exits at start-up (our ipamd, with both address
// families off, as upstream's is without the manifest's ENABLE_IPv4):
// the run fails, and the error names where the node's logs were kept,
// which hold the agent's own reason although the node is gone.
func TestPrivilegedSideBySideKeepsLogsOfAFailedAgent(t *testing.T) {
	testutil.Privileged(t)
	ours, err := localvpc.ProjectBinaries(buildBinaries(t))
	if err != nil {
		t.Fatal(err)
	}
	failing := ours
	failing.IPAMD = filepath.Join(t.TempDir(), "refusing-ipamd")
	script := "#!/bin/sh\nENABLE_IPv4=false ENABLE_IPv6=false exec " + ours.IPAMD + " \"$@\"\n"
	if err := os.WriteFile(failing.IPAMD, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := defaultSBSConfig(true)
	cfg.WorkDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var runDir string
	cfg.OnVPC = func(v *localvpc.VPC) { runDir = v.Dir }
	_, err = sbsOne(ctx, cfg, failing, "round1-compare")
	if err == nil {
		t.Fatal("an agent that exits at start-up: the run succeeded")
	}
	_, kept, ok := strings.Cut(err.Error(), "(node logs in ")
	if !ok {
		t.Fatalf("error %q does not say where the node logs are", err)
	}
	kept = strings.TrimSuffix(kept, ")")
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Dir(kept)) })
	if _, serr := os.Stat(runDir); serr == nil {
		t.Errorf("run directory %s left behind", runDir)
	}
	log, rerr := os.ReadFile(filepath.Join(kept, "side-by-side", "ipamd.log"))
	if rerr != nil || !strings.Contains(string(log), "ENABLE_IPv4=false and ENABLE_IPv6=false") {
		t.Errorf("kept ipamd.log (%v) lacks the agent's reason:\n%s", rerr, log)
	}
}
