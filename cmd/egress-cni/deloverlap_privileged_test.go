package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/poll"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedDelWaitsForAddInFlight: a DEL of a container whose ADD is
// still running (kubelet's DEL after the ADD timed out, which the spec
// allows) came while the ADD was paused between wiring the veth and
// installing the SNAT (its first iptables run). The DEL removed the veth
// and freed the address at once, and the ADD, resumed, installed the SNAT
// chain and its jump for good: no later DEL of the container was due.
// The DEL must wait for the ADD and then remove all it made: the nat
// table and the node's links as before, no address held.
func TestPrivilegedDelWaitsForAddInFlight(t *testing.T) {
	tp := newTopo(t)
	entry := tp.egressEntry(false, "")
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, false)

	gate := t.TempDir()
	path := pausingIptables(t, gate)
	pod := testutil.NewNS(t)
	addDone := make(chan error, 1)
	go func() { addDone <- execQuiet(tp, "ADD", "ctr-slow", pod.Path(), path, entry) }()
	waitFile(t, filepath.Join(gate, "paused"), addDone)

	cmd, stdout := startPlugin(t, tp, "DEL", "ctr-slow", pod.Path(), entry)
	delDone := make(chan error, 1)
	go func() { delDone <- cmd.Wait() }()
	// Resumed once the DEL is done or waits on the container's in-flight
	// lock, whichever this build does.
	var delErr error
	finished := false
	err := poll.Until(context.Background(), 30*time.Second, func() error {
		select {
		case delErr = <-delDone:
			finished = true
			return nil
		default:
		}
		return holdsInFlightSlot(cmd.Process.Pid)
	})
	if err != nil {
		t.Fatalf("the DEL neither ended nor waited for the ADD: %v", err)
	}
	if err := os.WriteFile(filepath.Join(gate, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := waitDone(addDone, 60*time.Second); err != nil {
		t.Logf("the paused ADD: %v", err)
	}
	if !finished {
		delErr = waitDone(delDone, 60*time.Second)
	}
	if delErr != nil {
		t.Errorf("DEL: %v: %s", delErr, stdout)
	}
	wantLines(t, "node after the ADD and the DEL", snapshot(t, tp.node.Path()), nodeBefore)
	wantLines(t, "nat after the ADD and the DEL", tp.nat(t, false), natBefore)
	if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(held) != 0 {
		t.Errorf("addresses held after the ADD and the DEL: %v", held)
	}
}

// waitDone waits for the result on done, up to d.
func waitDone(done <-chan error, d time.Duration) error {
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("not done after %s", d)
	}
}

// holdsInFlightSlot reports, with nil, that process pid has an in-flight
// lock slot file open (egress.LockInFlight's files).
func holdsInFlightSlot(pid int) error {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && strings.Contains(target, "/.inflight-") {
			return nil
		}
	}
	return errors.New("no in-flight slot open")
}
