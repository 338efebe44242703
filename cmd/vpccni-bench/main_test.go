package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
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
	for _, bad := range [][]string{
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

func TestVmRSSAndIPAMDPID(t *testing.T) {
	rss, err := vmRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("vmRSS(self) = %d, %v", rss, err)
	}
	if _, err := vmRSS(1 << 30); err == nil {
		t.Error("vmRSS of a pid that cannot exist: no error")
	}
	if _, err := ipamdPID(0); err == nil {
		t.Error("ipamdPID(0): no error")
	}
	// The test binary is no ipamd, nor is anything below it.
	if _, err := ipamdPID(os.Getpid()); err == nil {
		t.Error("ipamdPID found an ipamd under the test process")
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
