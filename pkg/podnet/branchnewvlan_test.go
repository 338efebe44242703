package podnet

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedBranchRecreatedOnNewVLANLateDEL: a branch-ENI pod is
// recreated under the same name and gets a new branch ENI with another
// VLAN id (8). The old sandbox A's DEL comes after the new sandbox B's
// ADD, which marked the pod's host veth as B's: A's DEL must still remove
// A's VLAN link, table and rules, which are provably A's, and leave B's
// wiring whole.
func TestPrivilegedBranchRecreatedOnNewVLANLateDEL(t *testing.T) {
	eachMode(t, func(t *testing.T, strict bool) {
		ctx := context.Background()
		e := newBranchNode(t, strict)
		a := e.goneSandboxA(t, strict, "")
		veth := a.Pod.Interfaces[0].HostVeth

		b := e.branch(testutil.NewNS(t), strict).onENI(8, "02:42:0a:02:00:42", "10.2.0.66")
		b.Pod.Sandbox = "sandbox-b"
		e.node.do(t, func() error { return SetupBranch(ctx, b, podnettest.MacvlanVLAN{}) })

		if kept := e.node.teardownBranch(t, a.Pod, branchVLAN); kept != "" {
			t.Errorf("A's late DEL kept %q, want A's VLAN 7 removed", kept)
		}
		wantState(t, "node after A's late DEL", e.node.ns, wiredBranchOn(8, "10.2.0.66", veth, strict))

		// B's own DEL then leaves the node as it was.
		if kept := e.node.teardownBranch(t, b.Pod, 8); kept != "" {
			t.Errorf("B's DEL kept %q", kept)
		}
		e.node.vethGone(t, veth)
		wantState(t, "node after B's DEL", e.node.ns, bareBranchNode(strict))
	})
}

// TestPrivilegedBranchRecreatedAsRegularPodLateDEL: a branch-ENI pod is
// recreated under the same name as a regular pod (no branch ENI). Under
// the pod lock the old sandbox A's late DEL removes A's marked VLAN link,
// table and rules: B's ADD is not wiring then, and its wiring would have
// replaced the VLAN link. Without the lock (it could not be taken in
// time) nothing proves B will not wire VLAN 7 and all is left, as before.
func TestPrivilegedBranchRecreatedAsRegularPodLateDEL(t *testing.T) {
	for _, locked := range []bool{true, false} {
		t.Run(map[bool]string{true: "locked", false: "unlocked"}[locked], func(t *testing.T) {
			ctx := context.Background()
			lockFile := ""
			if locked {
				lockFile = filepath.Join(t.TempDir(), "aws-cni.lock")
			}
			e := newBranchEnv(t)
			a := e.goneSandboxA(t, false, lockFile)
			veth := a.Pod.Interfaces[0].HostVeth

			b := Pod{NetNS: testutil.NewNS(t).Path(), MTU: 1500, Sandbox: "sandbox-b", LockFile: lockFile,
				Interfaces: []Interface{iface("default", "sg-pod", "10.1.0.9", 0, 3)}}
			e.node.do(t, func() error { return Setup(ctx, b) })
			kept := e.node.teardownBranch(t, a.Pod, branchVLAN)
			want := []string{
				"link eth1 veth up mtu 1500",
				"link " + veth + " veth up mtu 1500",
				"route main 10.1.0.9/32 dev " + veth + " scope link",
				"rule 512 to 10.1.0.9/32 lookup main",
				"rule 1536 from 10.1.0.9/32 lookup 3",
			}
			if !locked {
				if kept == "" {
					t.Errorf("unlocked late DEL kept nothing, want all of VLAN 7 left")
				}
				want = append(want,
					"link vlan.eth.7 macvlan up mtu 1500",
					"route 107 10.2.0.1/32 dev vlan.eth.7 scope link",
					"route 107 0.0.0.0/0 via 10.2.0.1 dev vlan.eth.7",
					"rule 512 to 10.2.0.55/32 lookup main",
					"rule 1536 from 10.2.0.55/32 lookup 107")
			} else if kept != "" {
				t.Errorf("locked late DEL kept %q, want A's VLAN 7 removed", kept)
			}
			wantState(t, "node after A's late DEL", e.node.ns, want)
		})
	}
}
