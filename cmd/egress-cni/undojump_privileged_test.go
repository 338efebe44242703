package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedFailedAddRemovesItsJumpBesideAnotherAttachment: the
// container already holds an address under another interface (net1: an
// attachment whose own ADD never wired it), so the failed eth0 ADD's undo
// may not simply remove the container's SNAT chain. The ADD's SNAT was
// installed before it failed (CNI_NETNS swapped after the check): the
// undo removes the POSTROUTING jump from the address it released, which a
// later pod may be given, and the chain nothing jumps to any more.
func TestPrivilegedFailedAddRemovesItsJumpBesideAnotherAttachment(t *testing.T) {
	tp := newTopo(t)
	entry := tp.egressEntry(false, "")
	pod, other := testutil.NewNS(t), testutil.NewNS(t)
	link := filepath.Join(t.TempDir(), "netns")
	if err := os.Symlink(pod.Path(), link); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(tp.dataDir, "egress-v4-ipam", "aws-cni")
	if err := os.MkdirAll(store, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(store, "169.254.172.200"), []byte("ctr-swap\r\nnet1"), 0o600); err != nil {
		t.Fatal(err)
	}
	natBefore := tp.nat(t, false)

	lock := holdStoreLock(t, store)
	cmd, stdout := startPlugin(t, tp, "ADD", "ctr-swap", link, entry)
	waitBlockedOnLock(t, cmd.Process.Pid)
	next := link + ".next"
	if err := os.Symlink(other.Path(), next); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, link); err != nil {
		t.Fatal(err)
	}
	lock.Close()
	if err := cmd.Wait(); err == nil {
		t.Fatalf("ADD succeeded: %s", stdout)
	}
	wantLines(t, "nat after the failed ADD", tp.nat(t, false), natBefore)
	if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(held) != 1 {
		t.Errorf("addresses held after the failed ADD: %v, want net1's only", held)
	}
}
