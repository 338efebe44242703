package ipamd

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestIPv6MultiNICCardGetsAnENI: in IPv6 mode there is no warm pool, only
// each ENI's /80; a managed network card above 0 starts with no ENI, so
// it needs one (as upstream attaches one per such card at start), or a
// multi-NIC pod can never get its second address.
func TestIPv6MultiNICCardGetsAnENI(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "c6in.32xlarge", cfg: func(c *config.Config) {
		c.EnableIPv4, c.EnableIPv6, c.EnablePrefixDelegation = false, true, true
		c.EnableMultiNIC = true
	}})
	ctx := context.Background()
	if len(h.n.Snapshot().Cards) != 2 {
		t.Fatalf("cards: %d", len(h.n.Snapshot().Cards))
	}
	h.settle()
	actx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	r, err := h.srv.AddNetwork(actx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "m", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "m", RequiresMultiNicAttachment: true})
	if err != nil {
		t.Fatalf("multi-NIC ADD in IPv6 mode: %v", err)
	}
	if len(r.IpAllocationMetadata) != 2 {
		t.Fatalf("multi-NIC reply: %v", r.IpAllocationMetadata)
	}
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	for i, md := range r.IpAllocationMetadata {
		a, err := netip.ParseAddr(md.Ipv6Addr)
		if err != nil {
			t.Fatalf("interface %d: %v", i, md)
		}
		card := -1
		for _, e := range inst.ENIs {
			for _, p := range e.IPv6Prefixes {
				if p.Contains(a) {
					card = e.Attachment.NetworkCard
				}
			}
		}
		if card != i {
			t.Errorf("interface %d's address %s lies on card %d's ENIs, want card %d", i, a, card, i)
		}
	}
	h.checkConsistent()
}

// TestIPv6ENIWiredWithIPv6: in IPv6 mode a pod on an ENI other than the
// primary (card 1's, for a multi-NIC pod) routes through that ENI's table
// by its from-pod rule, so the table needs the IPv6 default route: the
// ENI is set up on the host with its IPv6 address in its subnet's IPv6
// CIDR (as upstream), not its primary IPv4, which gave the table IPv4
// routes alone and the pod no way out.
func TestIPv6ENIWiredWithIPv6(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "c6in.32xlarge", cfg: func(c *config.Config) {
		c.EnableIPv4, c.EnableIPv6, c.EnablePrefixDelegation = false, true, true
		c.EnableMultiNIC = true
	}})
	h.settle()
	check := func(when string) {
		t.Helper()
		inst, err := h.env.Sim.Instance(simtest.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		h.host.mu.Lock()
		defer h.host.mu.Unlock()
		wired := 0
		for _, e := range h.host.enis {
			if e.NetworkCard != 1 {
				continue
			}
			wired++
			var eni *vpcsim.ENIView
			for i := range inst.ENIs {
				if inst.ENIs[i].MAC == e.MAC.String() {
					eni = &inst.ENIs[i]
				}
			}
			if eni == nil {
				t.Fatalf("%s: wired ENI %s is not the instance's", when, e.MAC)
			}
			var sub vpcsim.SubnetView
			for _, sv := range h.env.Sim.State().Subnets {
				if sv.ID == eni.SubnetID {
					sub = sv
				}
			}
			if !e.PrimaryIP.Is6() || !slices.Contains(eni.IPv6, e.PrimaryIP) || e.Subnet != sub.IPv6CIDR {
				t.Errorf("%s: card 1's ENI wired with %s in %s; want one of its IPv6 addresses %v in %s",
					when, e.PrimaryIP, e.Subnet, eni.IPv6, sub.IPv6CIDR)
			}
		}
		if wired != 1 {
			t.Errorf("%s: %d ENIs wired on card 1, want 1", when, wired)
		}
	}
	check("new ENI")
	h.host.mu.Lock()
	clear(h.host.enis)
	h.host.mu.Unlock()
	h.connect(fastTimes) // restart: the ENI is adopted
	if err := h.n.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	check("adopted ENI")
}
