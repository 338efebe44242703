package podnet

import (
	"context"
	"net"
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
		e := newBranchEnv(t)
		want := []string{"link eth1 veth up mtu 1500"}
		if strict {
			moveLocalRule(t, e.node)
			want = append(want, "rule 20 lookup local")
		}
		a := e.branch(testutil.NewNS(t), strict)
		a.Pod.Sandbox = "sandbox-a"
		e.node.do(t, func() error { return SetupBranch(ctx, a, podnettest.MacvlanVLAN{}) })
		veth := a.Pod.Interfaces[0].HostVeth
		e.node.vethGone(t, veth)

		podB := testutil.NewNS(t)
		b := e.branch(podB, strict)
		b.Pod.Sandbox = "sandbox-b"
		b.VLANID = 8
		b.ENIMAC, _ = net.ParseMAC("02:42:0a:02:00:42")
		b.Pod.Interfaces[0].Address = hostPrefix(net.ParseIP("10.2.0.66"))
		e.node.do(t, func() error { return SetupBranch(ctx, b, podnettest.MacvlanVLAN{}) })

		var kept string
		e.node.do(t, func() error {
			var err error
			kept, err = TeardownBranch(ctx, a.Pod, branchVLAN)
			return err
		})
		if kept != "" {
			t.Errorf("A's late DEL kept %q, want A's VLAN 7 removed", kept)
		}
		want = append(want,
			"link vlan.eth.8 macvlan up mtu 1500",
			"link "+veth+" veth up mtu 9001",
			"route 108 10.2.0.1/32 dev vlan.eth.8 scope link",
			"route 108 0.0.0.0/0 via 10.2.0.1 dev vlan.eth.8",
		)
		if strict {
			want = append(want,
				"route 108 10.2.0.66/32 dev "+veth+" scope link",
				"rule 10 iif vlan.eth.8 lookup 108",
				"rule 10 iif "+veth+" lookup 108")
		} else {
			want = append(want,
				"route main 10.2.0.66/32 dev "+veth+" scope link",
				"rule 512 to 10.2.0.66/32 lookup main",
				"rule 1536 from 10.2.0.66/32 lookup 108")
		}
		wantState(t, "node after A's late DEL", e.node.ns, want)

		// B's own DEL then leaves the node as it was.
		e.node.do(t, func() error {
			k, err := TeardownBranch(ctx, b.Pod, 8)
			if k != "" {
				t.Errorf("B's DEL kept %q", k)
			}
			return err
		})
		e.node.vethGone(t, veth)
		wantState(t, "node after B's DEL", e.node.ns, want[:len(want)-7])
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
			a := e.branch(testutil.NewNS(t), false)
			a.Pod.Sandbox, a.Pod.LockFile = "sandbox-a", lockFile
			e.node.do(t, func() error { return SetupBranch(ctx, a, podnettest.MacvlanVLAN{}) })
			veth := a.Pod.Interfaces[0].HostVeth
			e.node.vethGone(t, veth)

			b := Pod{NetNS: testutil.NewNS(t).Path(), MTU: 1500, Sandbox: "sandbox-b", LockFile: lockFile,
				Interfaces: []Interface{iface("default", "sg-pod", "10.1.0.9", 0, 3)}}
			e.node.do(t, func() error { return Setup(ctx, b) })
			var kept string
			e.node.do(t, func() error {
				var err error
				kept, err = TeardownBranch(ctx, a.Pod, branchVLAN)
				return err
			})
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
