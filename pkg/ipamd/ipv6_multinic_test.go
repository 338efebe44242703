package ipamd

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
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
