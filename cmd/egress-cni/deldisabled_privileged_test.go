package main

import (
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedDisabledDelRemovesEnabledAdd: a pod wired while egress
// was on is DELeted (twice) after an upgrade turned it off in the
// conflist. The disabled plugin's DEL finds the store the ADD made and
// removes the pod's egress: the node's links and nat table as before the
// ADD, the pod's egress link gone, no address held, for IPv4 and IPv6
// egress.
func TestPrivilegedDisabledDelRemovesEnabledAdd(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		tp := newTopo(t)
		store := tp.storeDir(v6)
		nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, v6)
		pod := testutil.NewNS(t)
		// The pod's main interface, which IPv6 egress needs.
		addMainIf(t, pod, "eth0")
		podBefore := snapshot(t, pod.Path())
		if e := execIf(t, tp, "ADD", "ctr-upgraded", pod.Path(), "eth0", withPrevResult(t, tp.egressEntry(v6, ""))); e != nil {
			t.Fatalf("v6=%v ADD: %v", v6, e)
		}
		if held := storeEntries(t, store); len(held) != 1 {
			t.Fatalf("v6=%v addresses held after the ADD: %v, want one", v6, held)
		}
		for i := range 2 {
			if e := execIf(t, tp, "DEL", "ctr-upgraded", pod.Path(), "eth0", tp.disabledEntry(v6)); e != nil {
				t.Errorf("v6=%v disabled DEL %d: %v", v6, i+1, e)
			}
		}
		wantLines(t, "node after the disabled DELs", snapshot(t, tp.node.Path()), nodeBefore)
		wantLines(t, "nat after the disabled DELs", tp.nat(t, v6), natBefore)
		wantLines(t, "pod after the disabled DELs", snapshot(t, pod.Path()), podBefore)
		if held := storeEntries(t, store); len(held) != 0 {
			t.Errorf("v6=%v addresses held after the disabled DELs: %v", v6, held)
		}
	}
}
