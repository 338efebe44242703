package podnet

import (
	"testing"
)

// TestPrivilegedBranchLateDELAfterAddressReusedByRegularPod: branch pod
// A's DEL did not get through (killed, or retried after the runtime gave
// up) before A's branch ENI was deleted, its address 10.2.0.55 went back
// to the subnet and ipamd gave it, as a secondary address of the ENI of
// table 3, to a regular pod W on the same node. A's late DEL, its VLAN
// link still there with A's mark, must remove A's VLAN link, table and
// rules and leave W's route and rules alone: W's to-pod rule is the same
// rule as A's was, and without it traffic from pods of other ENIs to W
// leaves by their ENI's table.
func TestPrivilegedBranchLateDELAfterAddressReusedByRegularPod(t *testing.T) {
	eachMode(t, func(t *testing.T, strict bool) {
		e := newBranchNode(t, strict)
		a := e.goneSandboxA(t, strict, "")
		wVeth := e.regularPodW(t)

		if kept := e.node.teardownBranch(t, a.Pod, branchVLAN); kept == "" {
			t.Errorf("A's late DEL kept nothing, want W's rules of %s left alone", branchPodIP)
		}
		want := append(bareBranchNode(strict),
			"link "+wVeth+" veth up mtu 9001",
			"route main "+branchPodIP+"/32 dev "+wVeth+" scope link",
			"rule 512 to "+branchPodIP+"/32 lookup main",
			"rule 1536 from "+branchPodIP+"/32 lookup 3")
		wantState(t, "node after A's late DEL", e.node.ns, want)
	})
}
