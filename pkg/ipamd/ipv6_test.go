package ipamd

import (
	"context"
	"net/netip"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestIPv6Mode: with ENABLE_IPv6 every ENI carries one /80 prefix (no warm
// pool); pods get addresses from it and replies carry the VPC's IPv6 CIDRs.
func TestIPv6Mode(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) {
		c.EnableIPv4, c.EnableIPv6, c.EnablePrefixDelegation = false, true, true
	}})
	ctx := context.Background()
	inst, err := h.env.Sim.Instance("i-0000000000000001")
	if err != nil {
		t.Fatal(err)
	}
	if len(inst.ENIs) != 1 || len(inst.ENIs[0].IPv6Prefixes) != 1 || inst.ENIs[0].IPv6Prefixes[0].Bits() != 80 {
		t.Fatalf("primary ENI after init: %+v", inst.ENIs)
	}
	pfx := inst.ENIs[0].IPv6Prefixes[0]
	before := h.calls()
	h.n.PoolCycle(ctx)
	if d := callDelta(before, h.calls()); len(d) != 0 {
		t.Errorf("IPv6 pool cycle made EC2 calls: %v", d)
	}
	seen := map[string]bool{}
	for _, id := range []string{"a", "b", "c"} {
		r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: id, IfName: "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		md := r.IpAllocationMetadata[0]
		a, err := netip.ParseAddr(md.Ipv6Addr)
		if err != nil || !pfx.Contains(a) || md.Ipv4Addr != "" || seen[md.Ipv6Addr] {
			t.Errorf("pod %s: %v (prefix %s)", id, md, pfx)
		}
		seen[md.Ipv6Addr] = true
		if len(r.VpcV6Cidrs) == 0 || len(r.VpcV4Cidrs) != 0 {
			t.Errorf("reply CIDRs: v4 %v v6 %v", r.VpcV4Cidrs, r.VpcV6Cidrs)
		}
	}
	if h.host.host == nil || !h.host.host.IPv6 {
		t.Error("host networking not configured for IPv6")
	}
	if err := h.n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	h.checkConsistent()
}
