package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedGCLeavesAddInFlight: a CNI GC that runs while an ADD of a
// new sandbox is paused between taking its egress address and installing
// its SNAT (its first iptables run) does not list that sandbox as valid,
// as a runtime could not; the GC still removes the stale pod's wiring but
// leaves the new pod's, and once resumed the ADD succeeds with the new
// pod wired and reaching the internet as the node. The GC used to release
// the new pod's address and delete its host veth: the ADD then succeeded
// with the pod's egress link gone and its address free for the next pod.
func TestPrivilegedGCLeavesAddInFlight(t *testing.T) {
	tp := newTopo(t)
	entry := tp.egressEntry(false, "")
	l := list(t, "1.0.0", loopbackEntry, entry)
	gone := testutil.NewNS(t)
	add(t, tp, l, runtimeConf("ctr-gone", gone.Path()))

	paused := startPausedAdd(t, tp, "ctr-new", entry)
	pod := paused.pod

	if out, err := runGC(tp, entry, "aws-cni"); err != nil {
		t.Errorf("GC during the ADD: %v: %s", err, out)
	}
	paused.resume(t)
	if err := waitDone(paused.done, 30*time.Second); err != nil {
		t.Fatalf("the paused ADD: %v", err)
	}

	store := filepath.Join(tp.dataDir, "egress-v4-ipam", "aws-cni")
	held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam"))
	var owners []string
	for _, a := range held {
		b, err := os.ReadFile(filepath.Join(store, a))
		if err != nil {
			t.Fatal(err)
		}
		owners = append(owners, strings.Fields(string(b))[0])
	}
	if !slices.Equal(owners, []string{"ctr-new"}) {
		t.Errorf("after GC and the ADD the store holds %v owned by %v, want the new pod's address only", held, owners)
	}
	node := strings.Join(snapshot(t, tp.node.Path()), "\n")
	if v := egress.HostVethName("ctr-new", "eth0"); !strings.Contains(node, v) {
		t.Errorf("the new pod's host veth %s is gone:\n%s", v, node)
	}
	if v := egress.HostVethName("ctr-gone", "eth0"); strings.Contains(node, v) {
		t.Errorf("the stale pod's host veth %s is left", v)
	}
	nat := strings.Join(tp.nat(t, false), "\n")
	if c := egress.ChainName(egress.V4, "aws-cni", "ctr-gone"); strings.Contains(nat, c) {
		t.Errorf("the stale pod's chain %s is left", c)
	}
	if src, err := seenFrom(pod, tp.internet, internetV4); err != nil || src != nodeV4 {
		t.Errorf("the new pod after GC: seen from %q (%v), want %s", src, err, nodeV4)
	}
}

// pausedAdd is an ADD of a new pod, paused at its first iptables run
// (between taking its egress address and installing its SNAT) until
// resume; done gets its outcome.
type pausedAdd struct {
	pod  ns.NetNS
	gate string
	done chan error
}

// startPausedAdd starts the ADD of container id into a new namespace and
// waits until it pauses.
func startPausedAdd(t *testing.T, tp *topo, id, entry string) *pausedAdd {
	t.Helper()
	p := &pausedAdd{pod: testutil.NewNS(t), gate: t.TempDir(), done: make(chan error, 1)}
	path := pausingIptables(t, p.gate)
	go func() { p.done <- execQuiet(tp, "ADD", id, p.pod.Path(), path, entry) }()
	waitFile(t, filepath.Join(p.gate, "paused"), p.done)
	return p
}

// resume lets the paused ADD go on.
func (p *pausedAdd) resume(t *testing.T) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(p.gate, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitDone waits for the outcome on done, up to d.
func waitDone(done <-chan error, d time.Duration) error {
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		return fmt.Errorf("not done after %s", d)
	}
}

// pausingIptables returns a PATH whose iptables waits, on its first run,
// until the file go appears in gate, having made the file paused there;
// the other iptables tools are the real ones.
func pausingIptables(t *testing.T, gate string) string {
	t.Helper()
	dir := t.TempDir()
	real, err := exec.LookPath("iptables")
	if err != nil {
		t.Skipf("no iptables: %v", err)
	}
	for _, n := range []string{"iptables-restore", "iptables-save", "ip6tables", "ip6tables-restore", "ip6tables-save"} {
		if p, err := exec.LookPath(n); err == nil {
			if err := os.Symlink(p, filepath.Join(dir, n)); err != nil {
				t.Fatal(err)
			}
		}
	}
	script := fmt.Sprintf("#!/bin/sh\nif [ ! -e %[1]s/go ]; then\n  : > %[1]s/paused\n  while [ ! -e %[1]s/go ]; do sleep 0.02; done\nfi\nexec %[2]s \"$@\"\n", gate, real)
	if err := os.WriteFile(filepath.Join(dir, "iptables"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir + ":" + os.Getenv("PATH")
}

// waitFile waits for name to exist, failing if the ADD ends first.
func waitFile(t *testing.T, name string, done <-chan error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(name); err == nil {
			return
		}
		select {
		case err := <-done:
			t.Fatalf("the ADD ended before pausing: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the ADD never paused")
		}
	}
}
