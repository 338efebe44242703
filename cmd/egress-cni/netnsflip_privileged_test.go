package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedDelCheckNetNSFlippedToFIFO: CNI_NETNS is a symlink a
// hostile runtime keeps pointing back and forth between the pod's
// namespace and a FIFO no process writes to. DEL and CHECK reached the
// namespace by path twice (a check that it is a namespace, then an open),
// so one that checked the namespace and then opened the FIFO blocked until
// the runtime killed it; a DEL then never completed. Each CHECK and DEL
// must answer at once, and the DELs remove the pod's node side, SNAT and
// address. The flips are a race: before the fix some runs of each batch
// hung, not a fixed one.
func TestPrivilegedDelCheckNetNSFlippedToFIFO(t *testing.T) {
	const runs = 100
	tp := newTopo(t)
	entry := tp.egressEntry(false, "")
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, false)
	pod := testutil.NewNS(t)
	if e := execPlugin(t, tp, "ADD", "ctr-flip", pod.Path(), os.Getenv("PATH"), entry); e != nil {
		t.Fatalf("ADD: %v", e)
	}
	dir := t.TempDir()
	fifo, link := filepath.Join(dir, "fifo"), filepath.Join(dir, "netns")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(pod.Path(), link); err != nil {
		t.Fatal(err)
	}
	flipping := flipSymlink(t, link, pod.Path(), fifo)

	for i := range runs {
		// CHECK's verdict depends on which the path named when it looked;
		// it must give one.
		if _, err := runKilledAfter(t, tp, "CHECK", "ctr-flip", link, entry, 10*time.Second); err != nil {
			t.Fatalf("CHECK %d of %d: %v", i+1, runs, err)
		}
	}
	for i := range runs {
		e, err := runKilledAfter(t, tp, "DEL", "ctr-flip", link, entry, 10*time.Second)
		if err != nil || e != nil {
			t.Fatalf("DEL %d of %d: %v %v", i+1, runs, err, e)
		}
	}
	flips := flipping()
	t.Logf("%d flips", flips)

	wantLines(t, "node after DEL", snapshot(t, tp.node.Path()), nodeBefore)
	wantLines(t, "nat after DEL", tp.nat(t, false), natBefore)
	if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(held) != 0 {
		t.Errorf("addresses held after DEL: %v", held)
	}
	if node := strings.Join(snapshot(t, tp.node.Path()), "\n"); strings.Contains(node, egress.HostVethName("ctr-flip", "eth0")) {
		t.Errorf("the pod's host veth is left:\n%s", node)
	}
}

// flipSymlink points link at a and b in turn, atomically (rename), until
// the returned function is called; that stops it and returns the number
// of flips.
func flipSymlink(t *testing.T, link, a, b string) func() int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		n := 0
		defer func() { done <- n }()
		next := link + ".next"
		for ctx.Err() == nil {
			target := a
			if n%2 == 0 {
				target = b
			}
			_ = os.Remove(next)
			if err := os.Symlink(target, next); err != nil {
				t.Errorf("flip %s: %v", link, err)
				return
			}
			if err := os.Rename(next, link); err != nil {
				t.Errorf("flip %s: %v", link, err)
				return
			}
			n++
		}
	}()
	var flips int
	stopped := false
	stop := func() int {
		if !stopped {
			stopped = true
			cancel()
			flips = <-done
		}
		return flips
	}
	t.Cleanup(func() { stop() })
	return stop
}
