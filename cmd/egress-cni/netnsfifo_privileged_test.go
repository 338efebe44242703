package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedNetNSFIFO: CNI_NETNS names a FIFO no process writes to.
// Opening it as a namespace blocked the command until the runtime killed
// it. ADD must refuse it at once naming CNI_NETNS and hold no address;
// DEL of a pod wired before (its runtime now passing the FIFO) must
// succeed at once and remove the node's side of it; CHECK must answer.
func TestPrivilegedNetNSFIFO(t *testing.T) {
	tp := newTopo(t)
	entry := tp.egressEntry(false, "")
	fifo := filepath.Join(t.TempDir(), "netns")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, false)

	e, err := runKilledAfter(t, tp, "ADD", "ctr-fifo", fifo, entry, 10*time.Second)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if want := "CNI_NETNS: network namespace " + fifo + " is not a network namespace"; e == nil || e.Code != types.ErrInvalidNetNS || !strings.Contains(e.Msg, want) {
		t.Errorf("ADD: %v, want code %d containing %q", e, types.ErrInvalidNetNS, want)
	}
	if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(held) != 0 {
		t.Errorf("addresses held after the ADD: %v", held)
	}

	pod := testutil.NewNS(t)
	if e := execPlugin(t, tp, "ADD", "ctr-fifo", pod.Path(), os.Getenv("PATH"), entry); e != nil {
		t.Fatalf("ADD into the pod's namespace: %v", e)
	}
	e, err = runKilledAfter(t, tp, "CHECK", "ctr-fifo", fifo, entry, 10*time.Second)
	if err != nil {
		t.Errorf("CHECK: %v", err)
	} else if e == nil || e.Code != ErrCheckFailed {
		t.Errorf("CHECK: %v, want code %d", e, ErrCheckFailed)
	}
	for range 2 {
		e, err = runKilledAfter(t, tp, "DEL", "ctr-fifo", fifo, entry, 10*time.Second)
		if err != nil || e != nil {
			t.Fatalf("DEL: %v %v", err, e)
		}
	}
	wantLines(t, "node after DEL", snapshot(t, tp.node.Path()), nodeBefore)
	wantLines(t, "nat after DEL", tp.nat(t, false), natBefore)
	if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(held) != 0 {
		t.Errorf("addresses held after DEL: %v", held)
	}
	if node := strings.Join(snapshot(t, tp.node.Path()), "\n"); strings.Contains(node, egress.HostVethName("ctr-fifo", "eth0")) {
		t.Errorf("the pod's host veth is left:\n%s", node)
	}
}

// runKilledAfter runs egress-cni as execPlugin does, killing it after d:
// the CNI error it printed, nil on success, or an error when it had to
// be killed.
func runKilledAfter(t *testing.T, tp *topo, command, id, netns, entry string, d time.Duration) (*types.Error, error) {
	t.Helper()
	cmd, stdout := startPlugin(t, tp, command, id, netns, entry)
	var killed atomic.Bool
	timer := time.AfterFunc(d, func() { killed.Store(true); _ = cmd.Process.Kill() })
	runErr := cmd.Wait()
	timer.Stop()
	if killed.Load() {
		return nil, fmt.Errorf("still running after %s: killed", d)
	}
	if runErr == nil {
		return nil, nil
	}
	e := &types.Error{}
	if err := json.Unmarshal(stdout.Bytes(), e); err != nil {
		return nil, fmt.Errorf("%v without a CNI error on stdout: %q", runErr, stdout.Bytes())
	}
	return e, nil
}
