package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.pods != 1000 || o.churn != 60*time.Second || o.out != "bench/results.json" || o.svg != "bench/pool.svg" || o.quick || o.agent != "installer" {
		t.Errorf("defaults = %+v", o)
	}
	o, err = parseFlags([]string{"-quick"}, io.Discard)
	if err != nil || o.pods != 20 || o.churn != 10*time.Second {
		t.Errorf("-quick: %+v, %v; want 20 pods and 10s of churn", o, err)
	}
	o, err = parseFlags([]string{"-quick", "-pods", "50"}, io.Discard)
	if err != nil || o.pods != 50 {
		t.Errorf("-quick -pods 50: pods = %d, %v; an explicit -pods wins", o.pods, err)
	}
	o, err = parseFlags([]string{"-figure", "4"}, io.Discard)
	if err != nil || o.only != 4 || o.timeout != 15*time.Minute {
		t.Errorf("-figure 4: only %d, timeout %s, %v", o.only, o.timeout, err)
	}
	exe, _ := os.Executable()
	o, err = parseFlags([]string{"-compare-ipamd", exe, "-compare-plugin", exe}, io.Discard)
	if err != nil || o.timeout != 35*time.Minute {
		t.Errorf("with a compare agent: timeout %s, %v; want 35m (every figure twice)", o.timeout, err)
	}
	for _, bad := range [][]string{
		{"-figure", "-1"},
		{"-pods", "0"}, {"-churn", "10ms"}, {"-timeout", "0s"}, {"-agent", "kubelet"}, {"extra"}, {"-nope"},
	} {
		if _, err := parseFlags(bad, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): no error", bad)
		}
	}
}

func TestPrepareBinDir(t *testing.T) {
	bin := t.TempDir()
	if _, _, err := prepareBinDir(bin, "ipamd"); err == nil || !strings.Contains(err.Error(), "ipamd") {
		t.Errorf("empty bin: err = %v, want it to name the missing ipamd", err)
	}
	for _, b := range []string{"ipamd", "aws-cni", "aws-vpc-cni"} {
		if err := os.WriteFile(filepath.Join(bin, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir, cleanup, err := prepareBinDir(bin, "ipamd")
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("ipamd mode dir has %d entries, want ipamd and aws-cni only (no installer)", len(ents))
	}
	cleanup()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cleanup left %s", dir)
	}
	if dir, _, err := prepareBinDir(bin, "installer"); err != nil || dir != bin {
		t.Errorf("installer mode: %s, %v; want the bin dir itself", dir, err)
	}
}

func TestProcMemAndFindProcess(t *testing.T) {
	m, err := readProcMem(os.Getpid())
	if err != nil || m.RSS < 1<<20 || m.Anon <= 0 || m.File <= 0 || m.Anon+m.File > m.RSS {
		t.Errorf("readProcMem(self) = %+v, %v; want anonymous and file-backed parts within VmRSS", m, err)
	}
	if _, err := readProcMem(1 << 30); err == nil {
		t.Error("readProcMem of a pid that cannot exist: no error")
	}
	if _, err := findProcess(0, "ipamd"); err == nil {
		t.Error("findProcess(0): no error")
	}
	// The test binary is no ipamd, nor is anything below it; but it finds
	// itself by its own name.
	if _, err := findProcess(os.Getpid(), "ipamd"); err == nil {
		t.Error("findProcess found an ipamd under the test process")
	}
	comm, _ := os.ReadFile("/proc/self/comm")
	if pid, err := findProcess(os.Getpid(), strings.TrimSpace(string(comm))); err != nil || pid != os.Getpid() {
		t.Errorf("findProcess(self, %q) = %d, %v", comm, pid, err)
	}
}

func TestSideNodesAndComm(t *testing.T) {
	cmp := side{name: "compare", bins: &localvpc.AgentBinaries{IPAMD: "/x/aws-k8s-agent-v1.23.1-build", Plugin: "/x/aws-cni"}}
	if ours.nodeName(nodeWarm) != "warm" || cmp.nodeName(nodeWarm) != "warm-compare" {
		t.Errorf("node names %q %q", ours.nodeName(nodeWarm), cmp.nodeName(nodeWarm))
	}
	if ours.ipamdComm() != "ipamd" || cmp.ipamdComm() != "aws-k8s-agent-v" {
		t.Errorf("comms %q %q; want ipamd and the first 15 characters of the file name", ours.ipamdComm(), cmp.ipamdComm())
	}
	sc := scenario(true)
	if len(sc.Instances) != 2*len(nodeRoles) {
		t.Fatalf("scenario(true) has %d instances, want %d", len(sc.Instances), 2*len(nodeRoles))
	}
	ids := map[string]bool{}
	for i, in := range sc.Instances {
		twin := sc.Instances[i%len(nodeRoles)]
		if ids[in.ID] || in.Type != twin.Type {
			t.Errorf("instance %d: %+v (twin %+v): IDs must be unique, compare nodes identical to ours", i, in, twin)
		}
		ids[in.ID] = true
	}
}

func TestApplyGoals(t *testing.T) {
	c := defaultConfig(false, 1000, time.Minute)
	figs := []bench.Figure{
		{Key: keyFloor, Values: []bench.Value{bench.Millis("ADD p50", 10*time.Millisecond), bench.Millis("ADD p99", 20*time.Millisecond)}},
		{Key: keyLatency, Values: []bench.Value{bench.Millis("aws-cni ADD p50", 12*time.Millisecond), bench.Millis("aws-cni ADD p99", 50*time.Millisecond),
			bench.Millis("aws-cni DEL p50", 11*time.Millisecond)}},
		{Key: keyChurn, Values: []bench.Value{{Name: "DEL+ADD pairs per second", Value: 60}}},
		{Key: keyIdle, Values: []bench.Value{{Name: "mean during churn at 40 pods", Value: 70}, {Name: "mean during churn, static algorithm (model)", Value: 192}}},
		{Key: keyMemory, Values: []bench.Value{mib("110 pods: ipamd + installer VmRSS", 30<<20)}},
		{Key: keyBurst, Error: "not measured"},
	}
	applyGoals(figs, c)
	met := map[string]bool{}
	for _, f := range figs {
		for _, v := range f.Values {
			if v.Goal != nil {
				met[v.Name] = v.Goal.Met(v.Value)
			}
		}
	}
	want := map[string]bool{
		"aws-cni ADD p50":              true,  // 12 <= 13
		"aws-cni ADD p99":              false, // 50 > 40
		"aws-cni DEL p50":              true,  // 11 <= 12
		"DEL+ADD pairs per second":     true,  // 60 >= 50
		"mean during churn at 40 pods": false, // 70 > 64
	}
	for name, m := range want {
		if got, ok := met[name]; !ok || got != m {
			t.Errorf("%s: goal set %v, met %v; want met %v", name, ok, got, m)
		}
	}
	// Without a compare agent there is no memory ratio goal.
	if _, ok := met["110 pods: ipamd + installer VmRSS"]; ok {
		t.Error("memory goal against a compare agent set without one")
	}
}

func TestEC2Delta(t *testing.T) {
	before := vpcsim.Stats{Calls: map[string]int64{"A": 2, "B": 5}, Throttled: map[string]int64{"A": 1}}
	after := vpcsim.Stats{Calls: map[string]int64{"A": 2, "B": 9, "C": 1}, Throttled: map[string]int64{"A": 3, "C": 1}}
	calls, thr := ec2Delta(before, after)
	if len(calls) != 2 || calls["B"] != 4 || calls["C"] != 1 || thr != 3 || sumCalls(calls) != 5 {
		t.Errorf("ec2Delta = %v, %d; want B:4 C:1 and 3 throttled", calls, thr)
	}
}

func TestWriteOutputs(t *testing.T) {
	dir := t.TempDir()
	res := &bench.Results{Schema: bench.Schema, Figures: []bench.Figure{{ID: 1, Key: "k", Title: "t", Method: "m", Values: []bench.Value{{Name: "v", Value: 1}}}},
		Pool: &bench.PoolSeries{Samples: []bench.PoolSample{{T: 0, Held: 1}}}}
	o := options{out: filepath.Join(dir, "sub", "results.json"), svg: filepath.Join(dir, "pool.svg")}
	var out bytes.Buffer
	if err := writeOutputs(res, o, &out); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{o.out, o.svg} {
		if st, err := os.Stat(p); err != nil || st.Size() == 0 {
			t.Errorf("%s not written: %v", p, err)
		}
	}
	if !strings.Contains(out.String(), o.svg) {
		t.Errorf("output does not name the plot's path:\n%s", out.String())
	}
	// Invalid results are refused and leave no file behind.
	res.Figures[0].Method = ""
	o.out = filepath.Join(dir, "bad.json")
	if err := writeOutputs(res, o, io.Discard); err == nil {
		t.Error("invalid results written")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 { // sub/ and pool.svg
		t.Errorf("directory after a refused write: %v", ents)
	}
}

func TestMeasureUnknownFigure(t *testing.T) {
	res, err := measure(context.Background(), config{Only: 99})
	if err == nil || res != nil || !strings.Contains(err.Error(), "figure 99") {
		t.Errorf("measure(-figure 99) = %v, %v; want an error naming the figure", res, err)
	}
}

// Figures 2 and 13 show the churn cap from the node type's limits: an
// m5.4xlarge holds 8 × 29 secondary addresses, so 40 live pods leave 192
// to cool 30 s each; with prefix delegation its ENIs hold 16 times more,
// and max pods (234 without an API server) does not count cooling
// addresses, so the ENIs are the cap.
func TestChurnFiguresShowCap(t *testing.T) {
	c, ok := churnCapFor("m5.4xlarge", 40, false)
	if !ok || c.Held != 232 || c.MaxPods != 234 || c.Rate < 6.39 || c.Rate > 6.41 {
		t.Errorf("secondary-IP cap for m5.4xlarge, 40 live = %+v, %v; want 232 held, 6.4 pairs/s", c, ok)
	}
	pd, ok := churnCapFor("m5.4xlarge", 40, true)
	if !ok || pd.ENILimit != 3712 || pd.Held != 3712 || pd.Rate < 122.39 || pd.Rate > 122.41 {
		t.Errorf("PD cap for m5.4xlarge, 40 live = %+v, %v; want 3712 on the ENIs and held, 122.4 pairs/s", pd, ok)
	}
	cfg := defaultConfig(false, 1000, 60*time.Second)
	if m := churnFigure(cfg).Method; !strings.Contains(m, "8 ENIs x 29 = 232") || !strings.Contains(m, "(232 - 40 live) / 30 s = 6.4 pairs/s") {
		t.Errorf("figure 2's method does not show the cap: %s", m)
	}
	if m := churnPDFigure(cfg).Method; !strings.Contains(m, "Max pods") || !strings.Contains(m, "(3712 - 40 live) / 30 s = 122.4 pairs/s") {
		t.Errorf("figure 13's method does not show the cap: %s", m)
	}
	if _, ok := churnCapFor("no.such", 1, false); ok {
		t.Error("cap for an unknown instance type")
	}
}
