package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/plugins/pkg/testutils"
)

// TestPrivilegedDelGoneNetNSAndLease: the runtime destroyed the pod's
// namespace and the pod's address file in host-local's data dir is gone
// too (the rest of the store kept), then it DELs twice. Each DEL succeeds
// and together they leave the node's links and routes and the nat table
// as before the ADD and no address held, for IPv4 and IPv6 egress: the
// veth, the SNAT chain and its jump are found from the container ID alone.
func TestPrivilegedDelGoneNetNSAndLease(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		tp := newTopo(t)
		entry := withPrevResult(t, tp.egressEntry(v6, ""))
		store := tp.storeDir(v6)
		nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, v6)
		pod, err := testutils.NewNS()
		if err != nil {
			t.Fatal(err)
		}
		// Removed here too if the test fails before it removes it itself.
		t.Cleanup(func() { _ = pod.Close(); _ = testutils.UnmountNS(pod) })
		// The pod's main interface, which IPv6 egress needs.
		addMainIf(t, pod, "eth0")
		if e := execIf(t, tp, "ADD", "ctr-gone", pod.Path(), "eth0", entry); e != nil {
			t.Fatalf("v6=%v ADD: %v", v6, e)
		}
		held := storeEntries(t, store)
		if len(held) != 1 {
			t.Fatalf("v6=%v addresses held after the ADD: %v, want one", v6, held)
		}
		if err := os.Remove(filepath.Join(store, "aws-cni", held[0])); err != nil {
			t.Fatal(err)
		}
		_ = pod.Close()
		if err := testutils.UnmountNS(pod); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if e := execIf(t, tp, "DEL", "ctr-gone", pod.Path(), "eth0", entry); e != nil {
				t.Errorf("v6=%v DEL %d: %v", v6, i+1, e)
			}
		}
		wantLines(t, "node after the DELs", snapshot(t, tp.node.Path()), nodeBefore)
		wantLines(t, "nat after the DELs", tp.nat(t, v6), natBefore)
		if held := storeEntries(t, store); len(held) != 0 {
			t.Errorf("v6=%v addresses held after the DELs: %v", v6, held)
		}
	}
}
