package ipamd

import (
	"context"
	"net/netip"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestAddressEC2NoLongerListsNotReissuedAfterItsPodsDEL: EC2 unassigns a
// secondary address a pod holds (behind ipamd's back); the reconcile keeps
// it for the pod. Once the pod's DEL releases it, no new pod may get it:
// it is not the node's any more (EC2 may have given it to another
// instance). Before, it was free again in the store until the next
// reconcile, and the next ADD got it.
func TestAddressEC2NoLongerListsNotReissuedAfterItsPodsDEL(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmIPTarget = 2; c.IPCooldown = 0 }})
	ctx := context.Background()
	h.n.PoolCycle(ctx)
	r, err := h.srv.AddNetwork(ctx, addReq("held"))
	if err != nil {
		t.Fatal(err)
	}
	held := netip.MustParseAddr(r.IpAllocationMetadata[0].Ipv4Addr)
	if err := h.ec2.UnassignIPv4(ctx, h.primaryENI(), []netip.Addr{held}); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.srv.DelNetwork(ctx, delReq("held")); err != nil {
		t.Fatal(err)
	}
	next, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "next", IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	got := netip.MustParseAddr(next.IpAllocationMetadata[0].Ipv4Addr)
	if _, listed := simAddrs(h)[got]; !listed {
		t.Fatalf("the next pod got %s, which EC2 lists on no ENI of the node (the released pod's was %s)", got, held)
	}
}
