package podnet

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedBranchDELRacesVLANReuse: pod A's DEL has checked that
// VLAN id 7's link is A's, and in that moment the id, released with A's
// branch ENI, goes to another pod C, whose ADD (under C's own pod lock,
// not A's) wires VLAN 7 whole. A's DEL must then remove only what is A's:
// its route and rules, by A's host veth and A's VLAN link as the kernel
// shows them, never C's VLAN link, table 107 or their rules. A's netns is
// still there (a DEL comes before the runtime removes it), so A's veth is.
func TestPrivilegedBranchDELRacesVLANReuse(t *testing.T) {
	for _, strict := range []bool{true, false} {
		t.Run(map[bool]string{true: "strict", false: "standard"}[strict], func(t *testing.T) {
			ctx := context.Background()
			lockFile := filepath.Join(t.TempDir(), "aws-cni.lock")
			e := newBranchEnv(t)
			if strict {
				moveLocalRule(t, e.node)
			}
			a := e.branch(testutil.NewNS(t), strict)
			a.Pod.Sandbox, a.Pod.LockFile = "sandbox-a", lockFile
			e.node.do(t, func() error { return SetupBranch(ctx, a, podnettest.MacvlanVLAN{}) })
			vethA := a.Pod.Interfaces[0].HostVeth

			c := e.branch(testutil.NewNS(t), strict)
			c.Pod.Sandbox, c.Pod.LockFile = "sandbox-c", lockFile
			c.ENIMAC, _ = net.ParseMAC("02:42:0a:02:00:4d")
			prefix := "eni"
			if strict {
				prefix = vethname.BranchPrefix
			}
			vethC := vethname.HostVethName(prefix, "default", "other-pod", 0)
			c.Pod.Interfaces[0].HostVeth = vethC
			c.Pod.Interfaces[0].Address = hostPrefix(net.ParseIP("10.2.0.77"))

			delErr, addErr := raceLateDEL(t, e.node,
				func() error { _, err := TeardownBranch(ctx, a.Pod, branchVLAN); return err },
				func() error { return SetupBranch(ctx, c, podnettest.MacvlanVLAN{}) })
			if delErr != nil || addErr != nil {
				t.Fatalf("A's DEL: %v; C's ADD: %v", delErr, addErr)
			}
			want := []string{
				"link eth1 veth up mtu 1500",
				"link " + vethA + " veth up mtu 9001",
				"link vlan.eth.7 macvlan up mtu 1500",
				"link " + vethC + " veth up mtu 9001",
				"route 107 10.2.0.1/32 dev vlan.eth.7 scope link",
				"route 107 0.0.0.0/0 via 10.2.0.1 dev vlan.eth.7",
			}
			if strict {
				want = append(want,
					"route 107 10.2.0.77/32 dev "+vethC+" scope link",
					"rule 10 iif vlan.eth.7 lookup 107",
					"rule 10 iif "+vethC+" lookup 107",
					"rule 20 lookup local")
			} else {
				want = append(want,
					"route main 10.2.0.77/32 dev "+vethC+" scope link",
					"rule 512 to 10.2.0.77/32 lookup main",
					"rule 1536 from 10.2.0.77/32 lookup 107")
			}
			wantState(t, "node after A's DEL and C's ADD", e.node.ns, want)
		})
	}
}
