package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
)

// When aws-node refuses the environment given with -env, up's error says
// why (the end of the agent's log), since the log itself is removed with
// the run before the user reads the error; and nothing of the run remains.
func TestPrivilegedUpSaysWhyTheAgentFailed(t *testing.T) {
	testutil.Privileged(t)
	bin := buildLocalVPC(t)
	tmp := t.TempDir()
	scenario := filepath.Join(agentbin.RepoRoot(), "misc", "scenarios", "two-node.yaml")
	cmd := exec.Command(bin, "up", "-bin", agentbin.Dir(t), "-scenario", scenario, "-log", filepath.Join(t.TempDir(), "up.log"),
		"-env", "AWS_VPC_K8S_CNI_VETHPREFIX=toolongprefix")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(120 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("up with a refused environment still running after 120s (stderr %q)", stderr.String())
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("exit: %v, want status 1", err)
	}
	if !strings.Contains(stderr.String(), "VETHPREFIX") || !strings.Contains(stderr.String(), "at most 4 allowed") {
		t.Errorf("stderr %q, want the agent's reason (the veth prefix)", stderr.String())
	}
	if left := runLeftovers(cmd.Process.Pid, tmp); len(left) > 0 {
		t.Errorf("the failed run left %v", left)
	}
}

// While `localvpc up` starts (seconds, longer on a loaded machine) it says
// on stderr what it is doing, one line per step: vpcsim, each node's agent
// started and up. stdout still begins with "VPC up (run" once it is up.
func TestPrivilegedUpReportsProgress(t *testing.T) {
	testutil.Privileged(t)
	bin := buildLocalVPC(t)
	tmp := t.TempDir()
	scenario := filepath.Join(agentbin.RepoRoot(), "misc", "scenarios", "two-node.yaml")
	cmd := exec.Command(bin, "up", "-bin", agentbin.Dir(t), "-scenario", scenario, "-log", filepath.Join(tmp, "up.log"))
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	if err := testutil.Eventually(t.Context(), 180*time.Second, func() error {
		if !strings.Contains(stdout.String(), "VPC up") {
			return errors.New("not up yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("localvpc up not up: %v (stderr %q)", err, stderr.String())
	}
	// Read once stdout says up: every step's line was written before.
	progress := stderr.String()
	t.Logf("stderr before up:\n%s", progress)
	for _, want := range []string{
		"localvpc up: starting vpcsim",
		"localvpc up: vpcsim up, run ",
		"localvpc up: starting aws-node on node-1 (i-00000000000000001)",
		"localvpc up: starting aws-node on node-2 (i-00000000000000002)",
		"localvpc up: node node-1 (i-00000000000000001) up, 1 of 2",
		"localvpc up: node node-2 (i-00000000000000002) up, 2 of 2",
	} {
		if !strings.Contains(progress, want) {
			t.Errorf("stderr before the VPC was up:\n%s\nwant a line with %q", progress, want)
		}
	}
	if !strings.HasPrefix(stdout.String(), "VPC up (run ") {
		t.Errorf("stdout %q, want it to begin as before with \"VPC up (run \"", stdout.String())
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
		if err != nil {
			t.Errorf("exit after Ctrl-C once up: %v, want 0", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("localvpc up still running 60s after SIGINT")
	}
	if left := runLeftovers(cmd.Process.Pid, tmp); len(left) > 0 {
		t.Errorf("the run left %v", left)
	}
}
