package podnet

import (
	"context"
	"net"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
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
		e.node.vethGone(t, a.Pod.Interfaces[0].HostVeth)

		c := e.branch(testutil.NewNS(t), strict)
		c.Pod.Sandbox = sandboxC
		c.ENIMAC, _ = net.ParseMAC("02:42:0a:02:00:4d")
		prefix := "eni"
		if strict {
			prefix = vethname.BranchPrefix
		}
		veth := vethname.HostVethName(prefix, "default", "other-pod", 0)
		c.Pod.Interfaces[0].HostVeth = veth
		c.Pod.Interfaces[0].Address = hostPrefix(net.ParseIP("10.2.0.77"))
		e.node.do(t, func() error { return SetupBranch(ctx, c, podnettest.MacvlanVLAN{}) })

		var kept string
		e.node.do(t, func() error {
			var err error
			kept, err = TeardownBranch(ctx, a.Pod, branchVLAN)
			return err
		})
		if kept == "" {
			t.Errorf("A's late DEL kept nothing, want C's VLAN 7 left alone")
		}
		want = append(want,
			"link vlan.eth.7 macvlan up mtu 1500",
			"link "+veth+" veth up mtu 9001",
			"route 107 10.2.0.1/32 dev vlan.eth.7 scope link",
			"route 107 0.0.0.0/0 via 10.2.0.1 dev vlan.eth.7",
		)
		if strict {
			want = append(want,
				"route 107 10.2.0.77/32 dev "+veth+" scope link",
				"rule 10 iif vlan.eth.7 lookup 107",
				"rule 10 iif "+veth+" lookup 107")
		} else {
			want = append(want,
				"route main 10.2.0.77/32 dev "+veth+" scope link",
				"rule 512 to 10.2.0.77/32 lookup main",
				"rule 1536 from 10.2.0.77/32 lookup 107")
		}
		wantState(t, "node after A's late DEL", e.node.ns, want)
	})
}
