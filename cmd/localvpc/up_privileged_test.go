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
