package ipamd

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestRefusedAddressCostsNoEC2CallsPerReconcile: a multi-NIC pod holds
// one address per card; EC2 takes its card-0 address away (quarantined on
// card 0) and lists it on card 1's ENI. Card 1 refuses it until the pod's
// DEL. Instance metadata keeps listing an address card 1 does not hold, so
// before, every reconcile asked EC2 (DescribeNetworkInterfaces) for
// nothing it could act on. Now reconciles cost no EC2 call while the
// refusal stands, and the first one after the DEL adds the address,
// cooling, to card 1.
func TestRefusedAddressCostsNoEC2CallsPerReconcile(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "c6in.32xlarge", cfg: func(c *config.Config) {
		c.EnableMultiNIC, c.WarmIPTarget, c.IPCooldown, c.EnableSubnetDiscovery = true, 2, 30*time.Second, false
	}})
	ctx := context.Background()
	h.settle()
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "m", IfName: "eth0",
		RequiresMultiNicAttachment: true})
	if err != nil || len(r.IpAllocationMetadata) != 2 {
		t.Fatalf("multi-NIC ADD: %v %v", r, err)
	}
	moved := netip.MustParseAddr(r.IpAllocationMetadata[0].Ipv4Addr)
	kept := netip.MustParseAddr(r.IpAllocationMetadata[1].Ipv4Addr)
	addrs := simAddrs(h)
	from, to := addrs[moved], addrs[kept]
	if from == "" || to == "" {
		t.Fatalf("EC2 lists %s on %q and %s on %q", moved, from, kept, to)
	}
	other := h.otherEC2()
	if _, err := other.UnassignPrivateIpAddresses(ctx, &ec2.UnassignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(from), PrivateIpAddresses: []string{moved.String()}}); err != nil {
		t.Fatal(err)
	}
	if _, err := other.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(to), PrivateIpAddresses: []string{moved.String()}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a reconcile quarantining the moved address on card 0", func() bool {
		if err := h.n.Reconcile(ctx); err != nil {
			t.Logf("reconcile: %v", err)
		}
		return h.pool(0).Stats.Pending == 1
	})
	before := h.calls()
	for range 5 {
		if err := h.n.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d := callDelta(before, h.calls()); len(d) != 0 {
		t.Errorf("5 reconciles while card 1 refuses %s called EC2: %v, want no call", moved, d)
	}
	if e, _ := h.eni(1, to); holdsCIDR(e.CIDRs, moved) {
		t.Fatalf("card 1 holds %s while the pod quarantined on card 0 still uses it", moved)
	}

	if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "m", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	e, _ := h.eni(1, to)
	if !holdsCIDR(e.CIDRs, moved) || h.pool(0).Stats.Pending != 0 {
		t.Fatalf("after the DEL and a reconcile card 1 holds %+v, card 0 %d pending; want %s on card 1", e.CIDRs, h.pool(0).Stats.Pending, moved)
	}
	for _, ci := range e.CIDRs {
		if ci.Prefix.Contains(moved) && ci.Cooling != 1 {
			t.Errorf("%s on card 1 after the DEL: %+v, want it cooling", moved, ci)
		}
	}
}

func holdsCIDR(cidrs []datastore.CIDRInfo, a netip.Addr) bool {
	return slices.ContainsFunc(cidrs, func(ci datastore.CIDRInfo) bool { return ci.Prefix.Contains(a) })
}
