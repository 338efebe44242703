package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
)

// fakeBinDir is a directory holding executables named like the agent's
// binaries, enough for the -bin checks.
func fakeBinDir(t *testing.T) string {
	dir := t.TempDir()
	for _, b := range []string{localvpc.IPAMDBin, localvpc.PluginBin} {
		if err := os.WriteFile(filepath.Join(dir, b), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDemoFlags(t *testing.T) {
	bin := fakeBinDir(t)
	scenario := filepath.Join(agentbin.RepoRoot(), "misc", "scenarios", "two-node.yaml")
	f, err := parseDemoFlags([]string{"-pods", "20", "-bin", bin, "-scenario", scenario}, io.Discard)
	if err != nil || f.pods != 20 || f.binDir != bin || len(f.sc.Instances) != 2 {
		t.Errorf("parseDemoFlags = %+v, %v", f, err)
	}
	for _, bad := range []string{"0", "26"} {
		if _, err := parseDemoFlags([]string{"-pods", bad, "-bin", bin, "-scenario", scenario}, io.Discard); err == nil || !strings.Contains(err.Error(), "-pods "+bad) {
			t.Errorf("-pods %s: err = %v, want it to name the flag and value", bad, err)
		}
	}
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	if code := run([]string{"frobnicate"}); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if code := run(nil); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
}

// Help is not an error, and a wrong -bin or a stray argument is refused
// before anything is created (these runs return at once, root or not).
func TestCommandLineRefusedBeforeStarting(t *testing.T) {
	empty := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"up", "-h"}, 0, "-scenario"},
		{[]string{"demo", "-h"}, 0, "-pods"},
		// -h says what the command does, not a bare "Usage of up:"
		{[]string{"up", "-h"}, 0, "usage: localvpc up [flags]\n\nstarts vpcsim"},
		{[]string{"demo", "-h"}, 0, "usage: localvpc demo [flags]\n\nstarts a two-node VPC"},
		{[]string{"up", "-bin", empty}, 2, "-bin: " + empty + ": no ipamd binary"},
		{[]string{"demo", "-bin", empty}, 2, "-bin: " + empty + ": no ipamd binary"},
		{[]string{"up", "-bin", fakeBinDir(t), "node-1"}, 2, `unexpected argument "node-1"`},
		{[]string{"demo", "-bin", fakeBinDir(t), "sgp"}, 2, `unexpected argument "sgp"`},
		{[]string{"up", "-bin", fakeBinDir(t), "-env", "FOO"}, 2, `-env entry "FOO"`},
	} {
		var stdout, stderr bytes.Buffer
		code := runWith(tc.args, &stdout, &stderr)
		if code != tc.code {
			t.Errorf("localvpc %s: exit %d, want %d (stderr %q)", strings.Join(tc.args, " "), code, tc.code, stderr.String())
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("localvpc %s: stderr %q, want it to contain %q", strings.Join(tc.args, " "), stderr.String(), tc.want)
		}
	}
}

// A bad flag is reported once, by the flag set with its usage, not a
// second time as the command's error; the exit is 2.
func TestBadFlagReportedOnce(t *testing.T) {
	for _, cmd := range []string{"demo", "up", "cleanup"} {
		var stdout, stderr bytes.Buffer
		code := runWith([]string{cmd, "-bogus"}, &stdout, &stderr)
		if code != 2 {
			t.Errorf("localvpc %s -bogus: exit %d, want 2", cmd, code)
		}
		if n := strings.Count(stderr.String(), "flag provided but not defined: -bogus"); n != 1 {
			t.Errorf("localvpc %s -bogus: error printed %d times, want once; stderr:\n%s", cmd, n, stderr.String())
		}
	}
}

// `cleanup -h` and `cleanup <junk>` must not clean: a leftover run
// directory of a dead run survives them, and only plain `cleanup` removes it.
func TestCleanupHelpDoesNotClean(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(tmp, fmt.Sprintf("vpcsim-%dx000000", dead.Process.Pid))
	if err := os.Mkdir(left, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"cleanup", "-h"}, {"cleanup", "now"}} {
		var stdout, stderr bytes.Buffer
		code := runWith(args, &stdout, &stderr)
		if _, err := os.Stat(left); err != nil {
			t.Fatalf("localvpc %s removed %s (exit %d): it should only print help or refuse", strings.Join(args, " "), left, code)
		}
		if !strings.Contains(stderr.String(), "usage: localvpc cleanup") && !strings.Contains(stderr.String(), "unexpected argument") {
			t.Errorf("localvpc %s: stderr %q, want usage or the stray argument named", strings.Join(args, " "), stderr.String())
		}
	}
}

// A second run on the same log file (both take the default -log) is
// refused, naming the file, and leaves the first run's log intact; once the
// first run is done, the file is free again.
func TestSecondRunDoesNotTruncateTheFirstOnesLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "localvpc-up.log")
	log1, close1, err := newLogger(path)
	if err != nil {
		t.Fatal(err)
	}
	log1.Info("first run's line")
	_, close2, err := newLogger(path)
	if err == nil {
		close2()
		t.Error("second newLogger on a log in use: no error")
	} else if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "-log") {
		t.Errorf("second newLogger: %v, want it to name %s and -log", err, path)
	}
	if data, _ := os.ReadFile(path); !bytes.Contains(data, []byte("first run's line")) {
		t.Errorf("first run's log after a second run started: %q", data)
	}
	close1()
	_, close3, err := newLogger(path)
	if err != nil {
		t.Fatalf("log free again: %v", err)
	}
	close3()
	if data, _ := os.ReadFile(path); len(data) != 0 {
		t.Errorf("a new run's log starts with %q, want it empty", data)
	}
}

// up's node list says how to run ipamctl where ipamd answers: in the
// node's network namespace, with the built binary's full path.
func TestUpTellsHowToSeeTheWarmPool(t *testing.T) {
	var out bytes.Buffer
	n := &localvpc.Node{ID: "i-00000000000000001", Name: "node-1", NetNS: "/run/netns/vpcsim-1x2-i-00000000000000001", Dir: "/tmp/vpcsim-1x2/i-00000000000000001"}
	printNodes(&out, []*localvpc.Node{n}, "/work/bin")
	want := "warm pool:          ip netns exec vpcsim-1x2-i-00000000000000001 /work/bin/ipamctl pool"
	if !strings.Contains(out.String(), want) {
		t.Errorf("node list:\n%s\nwant a line %q", out.String(), want)
	}
}

// Without root, cleanup says it cannot work instead of ending quietly with
// success, and touches nothing.
func TestCleanupWithoutRootSaysSo(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	left := filepath.Join(tmp, fmt.Sprintf("vpcsim-%dx000000", dead.Process.Pid))
	if err := os.Mkdir(left, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		geteuid = func() int { return 65534 }
		t.Cleanup(func() { geteuid = os.Geteuid })
	}
	var stdout, stderr bytes.Buffer
	code := runWith([]string{"cleanup"}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "needs root") {
		t.Errorf("cleanup as non-root: exit %d, stderr %q; want non-zero and 'needs root'", code, stderr.String())
	}
	if _, err := os.Stat(left); err != nil {
		t.Errorf("cleanup as non-root touched %s", left)
	}
}

// A -scenario that cannot be read is bad input: up and demo refuse it with
// exit 2 naming the flag, before they take over the log file (which keeps
// the earlier run's lines) or clean up after crashed runs. Before, it was
// exit 1, found only after the log had been truncated (and the demo's
// error did not name -scenario). A -log that cannot be created is named
// as -log.
func TestBadScenarioRefusedBeforeStarting(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "up.log")
	badYAML := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(badYAML, []byte("vpcs: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	oneNode := filepath.Join(dir, "one-node.yaml")
	if err := os.WriteFile(oneNode, []byte("vpcs:\n- id: vpc-1\n  cidr: 10.0.0.0/16\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ cmd, scenario string }{
		{"up", filepath.Join(dir, "missing.yaml")}, {"up", badYAML},
		{"demo", filepath.Join(dir, "missing.yaml")}, {"demo", badYAML}, {"demo", oneNode},
	} {
		if err := os.WriteFile(logPath, []byte("earlier run's log\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		var stdout, stderr bytes.Buffer
		code := runWith([]string{tc.cmd, "-bin", fakeBinDir(t), "-scenario", tc.scenario, "-log", logPath}, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "-scenario") || !strings.Contains(stderr.String(), tc.scenario) {
			t.Errorf("%s -scenario %s: exit %d, stderr %q; want exit 2 naming -scenario and the file", tc.cmd, tc.scenario, code, stderr.String())
		}
		if data, _ := os.ReadFile(logPath); string(data) != "earlier run's log\n" {
			t.Errorf("%s -scenario %s: the log holds %q, want the earlier run's lines kept", tc.cmd, tc.scenario, data)
		}
	}
	if os.Geteuid() != 0 {
		return // up stops at its root check before opening the log
	}
	scenario := filepath.Join(agentbin.RepoRoot(), "misc", "scenarios", "two-node.yaml")
	var stdout, stderr bytes.Buffer
	code := runWith([]string{"up", "-bin", fakeBinDir(t), "-scenario", scenario, "-log", filepath.Join(dir, "no", "such", "up.log")}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "-log: ") {
		t.Errorf("up with -log in a missing directory: exit %d, stderr %q; want exit 1 naming -log", code, stderr.String())
	}
}
