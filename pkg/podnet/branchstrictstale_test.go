package podnet

import (
	"context"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedBranchStrictAfterStandardSandbox: branch pod sg-pod's
// sandbox A was wired in standard mode (VLAN 7, 10.2.0.55) and is gone
// with its namespace, its DEL not come yet. The node switched to strict
// mode and the pod's new sandbox B got the same branch ENI. B's ADD must
// leave exactly B's strict wiring: before, A's to-pod rule (to 10.2.0.55
// lookup main) and from-pod rule stayed until A's late DEL, which finds
// the veth marked as B's and removes nothing, so they stayed for B's
// lifetime; the to-pod rule sends what the node's other pods send B to
// main, out of the primary ENI whatever ENI the sender's address is on.
func TestPrivilegedBranchStrictAfterStandardSandbox(t *testing.T) {
	ctx := context.Background()
	e := newBranchEnv(t)
	a := e.goneSandboxA(t, false, "")

	moveLocalRule(t, e.node)
	b := e.branch(testutil.NewNS(t), true)
	b.Pod.Sandbox = "sandbox-b"
	e.node.do(t, func() error { return SetupBranch(ctx, b, podnettest.MacvlanVLAN{}) })
	veth := b.Pod.Interfaces[0].HostVeth
	want := wiredBranch(veth, true)
	wantState(t, "node after B's ADD", e.node.ns, want)

	// A's late DEL changes nothing of B's.
	e.node.teardownBranch(t, a.Pod, branchVLAN, a.Pod.Interfaces[0].HostVeth)
	wantState(t, "node after A's late DEL", e.node.ns, want)
}
