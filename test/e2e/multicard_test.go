package e2e

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// On two-card c6in.32xlarge nodes with ENABLE_MULTI_NIC, a pod that asks
// for multi-NIC attachment gets one address per card, each from an ENI of
// that card (card 1's ENI hot-plugged into the node as its own link);
// traffic from each address leaves by its card's ENI (the VPC's source
// check drops it anywhere else); DEL frees all of them.
func TestE2EMultiCard(t *testing.T) {
	t.Parallel()
	c := startAgents(t, startVPC(t, false, func(sc *vpcsim.Scenario) {
		for i := range sc.Instances {
			sc.Instances[i].Type = "c6in.32xlarge"
		}
	}), "ENABLE_MULTI_NIC=true", "WARM_IP_TARGET=2", "MINIMUM_IP_TARGET=2")
	v := c.v
	ctx := c.ctx(60 * time.Second)

	p, err := v.AddPodAnnotated(ctx, c.n1, "default", "mnic", localvpc.MultiNICAnnotation)
	if err != nil {
		t.Fatalf("multi-NIC pod: %v", err)
	}
	addrs := p.Addrs()
	if len(addrs) != 2 {
		t.Fatalf("multi-NIC pod has %v, want one address per card (2)", addrs)
	}
	enis := map[string]vpcsim.ENIView{}
	for _, e := range v.ENIs(c.n1) {
		enis[e.ID] = e
	}
	for card, a := range addrs {
		h, err := v.Locate(a)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		e := enis[h.ENIID]
		if e.Attachment == nil || e.Attachment.NetworkCard != card {
			t.Errorf("address %d (%s) is on %s, attached %+v; want an ENI of card %d", card, a, h.ENIID, e.Attachment, card)
			continue
		}
		t.Logf("card %d: %s from %s (device %d)", card, a, e.ID, e.Attachment.DeviceIndex)
		if card > 0 {
			if got := linkMAC(t, c.n1, "eth100"); got != e.MAC {
				t.Errorf("card 1's ENI %s (%s) is not eth100 in the node (MAC %q)", e.ID, e.MAC, got)
			}
		}
	}
	plain := c.pods(c.n2, "peer", 1)[0]
	if got := plain.Addrs(); len(got) != 1 {
		t.Errorf("a pod without the multi-NIC annotation got %v, want one address", got)
	}
	c.serve(plain)
	for _, a := range addrs {
		// A path expected to work: generous for a loaded CI machine.
		wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
		got, err := dataplane.Whoami(wctx, p.NetNS, a, netip.AddrPortFrom(plain.IP, dataplane.WhoamiPort))
		wcancel()
		if err != nil || got != a {
			t.Errorf("from %s to %s on the other node: saw %v, err %v", a, plain.IP, got, err)
		}
	}
	c.delAll([]*localvpc.Pod{p, plain})
	c.assertCheckpoint(c.n1, nil)
	c.assertCheckpoint(c.n2, nil)
	c.assertNoLeaks()
}
