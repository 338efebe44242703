package podnet

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// standinEnv is a branch environment whose branch ENI reaches the node as
// the local VPC's stand-in veth instead of an 802.1Q link on the trunk.
func standinEnv(t *testing.T) (branchEnv, podnettest.Standin) {
	t.Helper()
	e := newBranchEnv(t)
	s := podnettest.Standin{
		Node: e.node.ns, VPC: testutil.NewNS(t), VLANID: branchVLAN, MAC: e.eniMAC,
		RouterCIDR: branchGW + "/24", PodIP: net.ParseIP(branchPodIP),
	}
	if err := s.Plug(); err != nil {
		t.Fatal(err)
	}
	return e, s
}

func ifindex(t *testing.T, s podnettest.Standin) int {
	t.Helper()
	idx, err := s.Ifindex()
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// TestPrivilegedBranchStandin: with a stand-in present, the production
// VLAN step (KernelVLAN, which this kernel cannot serve) adopts it: the
// same link (same ifindex) carries the branch's table and the pod's
// traffic both ways, in either mode. Teardown removes the table's routes
// and the rules and leaves the stand-in; a second sandbox adopts it again.
func TestPrivilegedBranchStandin(t *testing.T) {
	for _, strict := range []bool{true, false} {
		name := map[bool]string{true: "strict", false: "standard"}[strict]
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e, s := standinEnv(t)
			if strict {
				moveLocalRule(t, e.node)
			}
			idx := ifindex(t, s)
			podNS := testutil.NewNS(t)
			b := e.branch(podNS, strict)
			veth := b.Pod.Interfaces[0].HostVeth
			e.node.do(t, func() error { return SetupBranch(ctx, b, nil) })

			want := []string{
				"link eth1 veth up mtu 1500",
				"link vlan.eth.7 veth up mtu 1500",
				"link " + veth + " veth up mtu 9001",
				"route 107 10.2.0.1/32 dev vlan.eth.7 scope link",
				"route 107 0.0.0.0/0 via 10.2.0.1 dev vlan.eth.7",
			}
			if strict {
				want = append(want, "route 107 10.2.0.55/32 dev "+veth+" scope link",
					"rule 10 iif vlan.eth.7 lookup 107", "rule 10 iif "+veth+" lookup 107", "rule 20 lookup local")
			} else {
				want = append(want, "route main 10.2.0.55/32 dev "+veth+" scope link",
					"rule 512 to 10.2.0.55/32 lookup main", "rule 1536 from 10.2.0.55/32 lookup 107")
			}
			wantState(t, "node", e.node.ns, want)
			if got := ifindex(t, s); got != idx {
				t.Errorf("stand-in re-created: ifindex %d, was %d", got, idx)
			}
			if err := podnettest.Connect(podNS.Path(), s.VPC.Path(), net.ParseIP(branchGW)); err != nil {
				t.Errorf("pod to VPC through the stand-in: %v", err)
			}
			if err := podnettest.Connect(s.VPC.Path(), podNS.Path(), net.ParseIP(branchPodIP)); err != nil {
				t.Errorf("VPC to pod through the stand-in: %v", err)
			}
			e.node.do(t, func() error { return CheckBranch(ctx, b.Pod, branchVLAN, b.SubnetGW, strict) })

			// DEL: routes and rules go, the stand-in and the pair stay (the
			// pair until the pod's netns goes).
			e.node.do(t, func() error { _, err := TeardownBranch(ctx, b.Pod, branchVLAN); return err })
			left := []string{"link eth1 veth up mtu 1500", "link vlan.eth.7 veth up mtu 1500"}
			if strict {
				left = append(left, "rule 20 lookup local")
			}
			wantState(t, "node after teardown", e.node.ns, append([]string{"link " + veth + " veth up mtu 9001"}, left...))
			e.node.do(t, func() error { _, err := TeardownBranch(ctx, b.Pod, branchVLAN); return err })

			// The pod's next sandbox adopts the same stand-in; its rollback
			// leaves the stand-in too.
			e.node.do(t, func() error { return SetupBranch(ctx, b, nil) })
			if err := podnettest.Connect(s.VPC.Path(), podNS.Path(), net.ParseIP(branchPodIP)); err != nil {
				t.Errorf("VPC to the next sandbox: %v", err)
			}
			e.node.do(t, func() error { return undoBranch(ctx, b.Pod, branchVLAN) })
			wantState(t, "node after undo", e.node.ns, left)
			if got := ifindex(t, s); got != idx {
				t.Errorf("stand-in re-created: ifindex %d, was %d", got, idx)
			}
			err := e.node.run(func() error {
				l, err := netlink.LinkByName(s.Name())
				if err == nil && (l.Attrs().Alias != StandinAlias || l.Attrs().HardwareAddr.String() != e.eniMAC.String()) {
					t.Errorf("stand-in changed: alias %q MAC %s", l.Attrs().Alias, l.Attrs().HardwareAddr)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestPrivilegedBranchStandinOfAnotherENI: a stand-in with another MAC is
// not this branch's: SetupBranch refuses, naming both MACs, and leaves it.
func TestPrivilegedBranchStandinOfAnotherENI(t *testing.T) {
	e, s := standinEnv(t)
	idx := ifindex(t, s)
	podNS := testutil.NewNS(t)
	b := e.branch(podNS, true)
	b.ENIMAC, _ = net.ParseMAC("02:42:0a:02:00:99")
	err := e.node.run(func() error { return SetupBranch(context.Background(), b, nil) })
	want := "branch stand-in link vlan.eth.7 carries MAC 02:42:0a:02:00:37, not the branch ENI's 02:42:0a:02:00:99"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("SetupBranch = %v, want %q", err, want)
	}
	if got := ifindex(t, s); got != idx {
		t.Errorf("stand-in touched: ifindex %d, was %d", got, idx)
	}
}

// TestPrivilegedBranchNoVLANSupport: on a kernel without 802.1Q and with
// no stand-in, the error names the missing feature and the link.
func TestPrivilegedBranchNoVLANSupport(t *testing.T) {
	e := newBranchEnv(t)
	probe := e.vlanSupport()
	if probe == nil {
		t.Skip("the kernel has 802.1Q VLAN support; nothing to refuse")
	}
	podNS := testutil.NewNS(t)
	b := e.branch(podNS, true)
	err := e.node.run(func() error { return SetupBranch(context.Background(), b, nil) })
	want := "create VLAN link vlan.eth.7 (id 7 on ifindex "
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "the kernel has no 802.1Q VLAN support (and no branch stand-in link vlan.eth.7 exists)") {
		t.Errorf("SetupBranch = %v, want the missing 802.1Q support and vlan.eth.7 named", err)
	}
	// The plugin's rollback leaves nothing behind.
	e.node.do(t, func() error { return undoBranch(context.Background(), b.Pod, branchVLAN) })
	wantState(t, "node after undo", e.node.ns, []string{"link eth1 veth up mtu 1500"})
	wantState(t, "pod after undo", podNS, nil)
}
