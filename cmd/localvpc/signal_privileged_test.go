package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/agentbin"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

func TestMain(m *testing.M) { os.Exit(agentbin.Main(m)) }

// buildLocalVPC builds this command as a user runs it.
func buildLocalVPC(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "localvpc")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/localvpc")
	cmd.Dir = agentbin.RepoRoot()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/localvpc: %v\n%s", err, b)
	}
	return out
}

// runLeftovers lists what the localvpc process pid left: its namespaces,
// its run directories in tmp, and processes carrying its run marker.
func runLeftovers(pid int, tmp string) []string {
	prefix := fmt.Sprintf("%s%dx", dataplane.NamePrefix, pid)
	var left []string
	if names, err := dataplane.ListNamespaces(prefix); err == nil {
		for _, n := range names {
			left = append(left, "netns "+n)
		}
	}
	if ents, err := os.ReadDir(tmp); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) {
				left = append(left, "dir "+e.Name())
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	marker := []byte(fmt.Sprintf("VPC_CNI_LOCALVPC_RUN=%dx", pid))
	for _, p := range procs {
		if env, err := os.ReadFile(p); err == nil && bytes.Contains(env, marker) {
			left = append(left, "process "+p)
		}
	}
	return left
}

// A signal while `localvpc up` brings its nodes up (a node namespace
// exists, agents not yet ready) removes everything the run created and
// says it was interrupted, with 130 as a shell reports Ctrl-C.
func TestPrivilegedUpInterruptedWhileStarting(t *testing.T) {
	testutil.Privileged(t)
	bin := buildLocalVPC(t)
	agents := agentbin.Dir(t)
	scenario := filepath.Join(agentbin.RepoRoot(), "misc", "scenarios", "two-node.yaml")
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			tmp := t.TempDir()
			cmd := exec.Command(bin, "up", "-bin", agents, "-scenario", scenario, "-log", filepath.Join(tmp, "up.log"))
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			// The child writes both while the test polls stdout below.
			var stdout, stderr lockedBuffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-done
				for _, l := range runLeftovers(pid, tmp) {
					t.Logf("leftover after the test: %s (localvpc cleanup removes it)", l)
				}
			})
			nodePrefix := fmt.Sprintf("%s%dx", dataplane.NamePrefix, pid)
			err := testutil.Eventually(t.Context(), 60*time.Second, func() error {
				names, err := dataplane.ListNamespaces(nodePrefix)
				if err != nil {
					return err
				}
				for _, n := range names {
					if strings.Contains(n, "-i-") {
						return nil
					}
				}
				return errors.New("no node namespace yet")
			})
			if err != nil {
				t.Fatalf("localvpc up made no node namespace: %v (stderr %q)", err, stderr.String())
			}
			if strings.Contains(stdout.String(), "VPC up") {
				t.Skip("the VPC was up before the signal; this run tests nothing")
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			select {
			case err = <-done:
				done <- err
			case <-ctx.Done():
				t.Fatalf("localvpc up still running 60s after %v", sig)
			}
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 130 {
				t.Errorf("exit after %v: %v, want status 130", sig, err)
			}
			if !strings.Contains(stderr.String(), "interrupted") || strings.Contains(stderr.String(), "context canceled") {
				t.Errorf("stderr after %v: %q, want it to say it was interrupted (not a step's cancellation)", sig, stderr.String())
			}
			if left := runLeftovers(pid, tmp); len(left) > 0 {
				t.Errorf("after %v the run left %v", sig, left)
			}
		})
	}
}

// Ctrl-C or SIGTERM while the demo starts aws-node on its nodes removes
// everything the tour made, node logs included (those are kept for
// failures, and -save-logs): nothing of the run is left in TMPDIR.
func TestPrivilegedDemoInterruptedLeavesNothing(t *testing.T) {
	testutil.Privileged(t)
	bin := buildLocalVPC(t)
	agents := agentbin.Dir(t)
	scenario := filepath.Join(agentbin.RepoRoot(), "misc", "scenarios", "two-node.yaml")
	tmp := t.TempDir()
	cmd := exec.Command(bin, "demo", "-bin", agents, "-scenario", scenario, "-log", filepath.Join(t.TempDir(), "demo.log"))
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	var stdout lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	// Step 3 starts the agents: the VPC and its nodes exist by then.
	err := testutil.Eventually(t.Context(), 90*time.Second, func() error {
		if !strings.Contains(stdout.String(), "[3/8]") {
			return errors.New("agents not starting yet")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("demo did not reach its agents: %v (output %q)", err, stdout.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-done:
		done <- err
	case <-time.After(60 * time.Second):
		t.Fatal("demo still running 60s after SIGTERM")
	}
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Errorf("exit after SIGTERM: %v, want status 130 (output %q)", err, stdout.String())
	}
	left := runLeftovers(pid, tmp)
	ents, _ := os.ReadDir(tmp)
	for _, e := range ents {
		left = append(left, "in TMPDIR: "+e.Name())
	}
	if len(left) > 0 {
		t.Errorf("after SIGTERM the demo left %v", left)
	}
}

// lockedBuffer is a bytes.Buffer a child process writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
