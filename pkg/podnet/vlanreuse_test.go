package podnet

import (
	"context"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedBranchLateDELAfterVLANReused: pod A's branch ENI had VLAN
// id 7; A is gone (its veth with its namespace) and VLAN id 7 now belongs
// to another pod C's branch ENI. A's late DEL must leave C's VLAN link,
// table and rules alone and remove only A's own rules.
func TestPrivilegedBranchLateDELAfterVLANReused(t *testing.T) {
	testLateDELAfterVLANReused(t, "sandbox-c")
}

// TestPrivilegedBranchLateDELAfterUnmarkedVLANReused is
// TestPrivilegedBranchLateDELAfterVLANReused with C wired without a
// sandbox's mark, as upstream's plugin or an older build wires, which is
// also how the local VPC's stand-in looks: nothing on C's VLAN link says
// whose it is, so A's late DEL must tell from the table that it serves C.
// Before, A's DEL deleted C's VLAN link and its table's iif rule.
func TestPrivilegedBranchLateDELAfterUnmarkedVLANReused(t *testing.T) {
	testLateDELAfterVLANReused(t, "")
}

func testLateDELAfterVLANReused(t *testing.T, sandboxC string) {
	eachMode(t, func(t *testing.T, strict bool) {
		e := newBranchNode(t, strict)
		a := e.goneSandboxA(t, strict, "")

		c := e.podC(testutil.NewNS(t), strict)
		c.Pod.Sandbox = sandboxC
		e.node.do(t, func() error { return SetupBranch(context.Background(), c, podnettest.MacvlanVLAN{}) })

		if kept := e.node.teardownBranch(t, a.Pod, branchVLAN); kept == "" {
			t.Errorf("A's late DEL kept nothing, want C's VLAN 7 left alone")
		}
		wantState(t, "node after A's late DEL", e.node.ns, wiredBranchOn(branchVLAN, "10.2.0.77", c.Pod.Interfaces[0].HostVeth, strict))
	})
}
