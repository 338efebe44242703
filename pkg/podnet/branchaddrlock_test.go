package podnet

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedBranchDELRacesBranchAddressReuse: branch pod A's late DEL
// has checked that main routes A's address through none of A's veths (A's
// namespace is gone, and its route with it), so the address's rules are
// A's, and is about to remove them. In that moment the address, back in
// the subnet, is a branch pod B's on another VLAN, whose ADD holds
// neither A's pod lock nor A's VLAN's. B's route and rules name the same
// address: B's ADD must end with them whole.
func TestPrivilegedBranchDELRacesBranchAddressReuse(t *testing.T) {
	eachMode(t, func(t *testing.T, strict bool) {
		ctx := context.Background()
		lockFile := filepath.Join(t.TempDir(), "aws-cni.lock")
		e := newBranchNode(t, strict)
		a := e.goneSandboxA(t, strict, lockFile)

		const vlanB = branchVLAN + 1
		b := e.branch(testutil.NewNS(t), strict).onENI(vlanB, "02:42:0a:02:00:38", "").ofPod("other-pod")
		b.Pod.Sandbox, b.Pod.LockFile = "sandbox-b", lockFile

		delErr, addErr := raceDELAt(t, e.node, &testHookOwnerChecked,
			func() error {
				_, err := TeardownBranch(ctx, a.Pod, branchVLAN)
				return err
			},
			func() error { return SetupBranch(ctx, b, podnettest.MacvlanVLAN{}) })
		if delErr != nil || addErr != nil {
			t.Fatalf("A's DEL: %v; B's ADD: %v", delErr, addErr)
		}
		wantState(t, "node after both", e.node.ns, wiredBranchOn(vlanB, branchPodIP, b.Pod.Interfaces[0].HostVeth, strict))
	})
}
