package ipamd

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	inst, err := h.env.Sim.Instance("i-00000000000000001")
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

// TestIPv6PrefixFailureBacksOff: while EC2 refuses an ENI its /80, the
// pool manager backs off as for IPv4 instead of calling EC2 every cycle.
func TestIPv6PrefixFailureBacksOff(t *testing.T) {
	times := fastTimes
	times.FailureBackoff = time.Hour
	h := newHarness(t, harnessOpts{times: &times, cfg: func(c *config.Config) {
		c.EnableIPv4, c.EnableIPv6, c.EnablePrefixDelegation = false, true, true
	}})
	ctx := context.Background()
	// Someone takes the ENI's /80 away in EC2; the reconcile drops it.
	eni := h.primaryENI()
	info, ok := h.eni(0, eni)
	if !ok || len(info.CIDRs) != 1 {
		t.Fatalf("primary ENI as the daemon shows it: %+v", info)
	}
	if _, err := h.otherEC2().UnassignIpv6Addresses(ctx, &ec2.UnassignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eni), Ipv6Prefixes: []string{info.CIDRs[0].Prefix.String()},
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if info, _ := h.eni(0, eni); len(info.CIDRs) != 0 {
		t.Fatalf("the /80 EC2 took away is still in the store: %+v", info.CIDRs)
	}
	if err := h.env.Sim.SetFaults(vpcsimFaults("AssignIpv6Addresses", "UnauthorizedOperation")); err != nil {
		t.Fatal(err)
	}
	before := h.calls()
	for range 5 {
		h.n.PoolCycle(ctx)
	}
	if n := callDelta(before, h.calls())["AssignIpv6Addresses"]; n != 1 {
		t.Errorf("AssignIpv6Addresses called %d times in 5 cycles while failing, want 1 (then back off)", n)
	}
	actx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, err := h.srv.AddNetwork(actx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "p", IfName: "eth0"})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("ADD while no ENI has a prefix = %v, want ResourceExhausted", err)
	}
	if !strings.Contains(err.Error(), "UnauthorizedOperation") {
		t.Errorf("ADD's error %q does not name EC2's refusal", err)
	}
}
