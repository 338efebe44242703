package localvpc

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// A node that hides the machine's /run/netns behind its own (as a kube
// node does: kubeMounts) still runs plugins forked straight into it: the
// node's network namespace is opened before its mount namespace is joined.
func TestPrivilegedInNodeExecWithPrivateRunNetns(t *testing.T) {
	v := startVPC(t)
	n := v.Nodes()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Inside the node's mount namespace only (slave propagation: the
	// machine's /run/netns is untouched).
	if _, stderr, err := n.Exec(ctx, nil, nil, "/bin/sh", "-c", "mount -t tmpfs vpccni-test /run/netns"); err != nil {
		t.Fatalf("hide /run/netns in the node: %v (%s)", err, stderr)
	}
	out, stderr, err := n.Exec(ctx, nil, nil, "/bin/sh", "-c", "cat /sys/class/net/eth0/address")
	if err != nil {
		t.Fatalf("exec in a node with a private /run/netns: %v (%s)", err, stderr)
	}
	inst, err := v.Sim.Instance(n.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != inst.MAC {
		t.Fatalf("eth0 in the node is %q, want the node's primary ENI %s", got, inst.MAC)
	}
}

// Cancelling an Exec forked straight into the node ends what it started,
// a child the plugin left behind included, and returns.
func TestPrivilegedInNodeExecCancelEndsEverything(t *testing.T) {
	v := startVPC(t)
	n := v.Nodes()[0]
	for _, tc := range []struct{ name, sh, script string }{
		{"plugin", "/bin/sh", "echo $$ > /run/cni/pids; exec sleep 300"},
		{"plugin's child", "/bin/sh", "sleep 300 & echo $! > /run/cni/pids; wait"},
		// A bare name goes through nsenter (Command).
		{"nsenter, plugin", "sh", "echo $$ > /run/cni/pids; exec sleep 300"},
		{"nsenter, plugin's child", "sh", "sleep 300 & echo $! > /run/cni/pids; wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pids := n.HostPath("/run/cni/pids")
			_ = os.Remove(pids)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, _, err := n.Exec(ctx, nil, nil, tc.sh, "-c", tc.script)
				done <- err
			}()
			var pid int
			if err := testutil.Eventually(context.Background(), workingWait, func() error {
				b, err := os.ReadFile(pids)
				if err != nil {
					return err
				}
				pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
				return err
			}); err != nil {
				t.Fatalf("the command in the node did not start: %v", err)
			}
			cancel()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("a cancelled Exec succeeded")
				}
			case <-time.After(workingWait):
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Fatal("a cancelled Exec did not return")
			}
			if err := testutil.Eventually(context.Background(), workingWait, func() error {
				b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
				if err != nil || strings.Contains(string(b), ") Z ") {
					return nil
				}
				return fmt.Errorf("pid %d still runs", pid)
			}); err != nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Fatal(err)
			}
		})
	}
}
