package podnet

import (
	"context"
	"net"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// thenVLAN creates the VLAN link with its VLANLinker, then runs then: it
// holds a SetupBranch at the point where the pod's host veth is marked and
// the VLAN link exists, but neither its table nor the pod's route does.
type thenVLAN struct {
	VLANLinker
	then func() error
}

func (v thenVLAN) CreateVLAN(name string, parentIndex, vlanID int, mac net.HardwareAddr) error {
	if err := v.VLANLinker.CreateVLAN(name, parentIndex, vlanID, mac); err != nil {
		return err
	}
	return v.then()
}

// TestPrivilegedBranchLateDELDuringADD: a late DEL of a branch-ENI pod's
// old sandbox A runs while the new sandbox B's ADD has marked its host veth
// but not yet routed the pod. B owns the branch then: A's DEL must leave
// the VLAN link, table and rules alone (and still succeed), and B's ADD must
// end with the full wiring.
func TestPrivilegedBranchLateDELDuringADD(t *testing.T) {
	eachMode(t, func(t *testing.T, strict bool) {
		ctx := context.Background()
		e := newBranchNode(t, strict)
		a := e.goneSandboxA(t, strict, "")
		veth := a.Pod.Interfaces[0].HostVeth

		podB := testutil.NewNS(t)
		b := e.branch(podB, strict)
		b.Pod.Sandbox = "sandbox-b"
		var kept string
		var delErr error
		lateDEL := func() error {
			kept, delErr = TeardownBranch(ctx, a.Pod, branchVLAN)
			return nil
		}
		e.node.do(t, func() error {
			return SetupBranch(ctx, b, thenVLAN{VLANLinker: podnettest.MacvlanVLAN{}, then: lateDEL})
		})
		if delErr != nil || kept == "" {
			t.Errorf("A's late DEL = %q, %v; want success leaving B's branch alone", kept, delErr)
		}
		want := wiredBranch(veth, strict)
		wantState(t, "node after B's ADD", e.node.ns, want)
		if err := podnettest.Connect(podB.Path(), e.vpc.Path(), net.ParseIP(branchGW)); err != nil {
			t.Errorf("B to VPC: %v", err)
		}
		if err := podnettest.Connect(e.vpc.Path(), podB.Path(), net.ParseIP(branchPodIP)); err != nil {
			t.Errorf("VPC to B: %v", err)
		}
	})
}

// TestPrivilegedLateDELDuringRegularADD: the same window for a regular
// pod whose new sandbox B got the old sandbox A's address on another ENI's
// table. A's late DEL, between B's pair and B's route, finds the veth
// marked B and unrouted: it removes A's rules of the address (B has none
// yet) and leaves B's veth, and B's ADD then adds its own, which survive.
func TestPrivilegedLateDELDuringRegularADD(t *testing.T) {
	finishes := map[string]func(*HostTeardown, context.Context, Pod) ([]string, error){
		"ipamd answered": (*HostTeardown).Finish,
		"ipamd down":     (*HostTeardown).FinishUnconfirmed,
	}
	for name, finish := range finishes {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			n := newNode(t, "192.168.0.10")
			a := Pod{NetNS: testutil.NewNS(t).Path(), MTU: 1500, Sandbox: "sandbox-a",
				Interfaces: []Interface{iface("default", "p", "10.1.0.6", 0, 3)}}
			n.do(t, func() error { return Setup(ctx, a) })
			veth := a.Interfaces[0].HostVeth
			n.vethGone(t, veth)

			b := Pod{NetNS: testutil.NewNS(t).Path(), MTU: 1500, Sandbox: "sandbox-b",
				Interfaces: []Interface{iface("default", "p", "10.1.0.6", 0, 4)}}
			ifc := b.Interfaces[0]
			n.do(t, func() error {
				host := openHost()
				defer host.Close()
				idx, err := setupVeth(ctx, host, b, ifc, nil)
				if err != nil {
					return err
				}
				if _, err := finish(StartTeardown(ctx, a), ctx, a); err != nil {
					t.Errorf("A's late DEL: %v", err)
				}
				return addHostRoutes(host, ifc.Address, ifc.HostVeth, idx, HostTable(ifc.RouteTable))
			})
			wantState(t, "node after B's ADD", n.ns, []string{
				"link " + veth + " veth up mtu 1500",
				"route main 10.1.0.6/32 dev " + veth + " scope link",
				"rule 512 to 10.1.0.6/32 lookup main",
				"rule 1536 from 10.1.0.6/32 lookup 4",
			})
		})
	}
}
