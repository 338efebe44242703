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

	paused := startPausedAdd(t, tp, "ctr-slow", entry)
	pod := paused.pod

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
	paused.resume(t)
	if err := waitDone(paused.done, 60*time.Second); err != nil {
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
