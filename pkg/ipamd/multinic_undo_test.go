package ipamd

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestWaitingMultiNICADDCoolsNothing: a multi-NIC ADD waiting for card 1
// takes an address on card 0 at each try and gives it back when card 1
// has none. That address never reached a pod, so it must not cool down:
// cooling addresses serve nobody for IP_COOLDOWN_PERIOD, and each try of
// the waiting ADD (one at every change in the pool) would take one more
// of card 0's.
func TestWaitingMultiNICADDCoolsNothing(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "c6in.32xlarge", cfg: func(c *config.Config) {
		c.EnableMultiNIC, c.WarmIPTarget, c.IPCooldown = true, 5, time.Hour
	}})
	ctx := context.Background()
	h.settle()
	// Card 1's one warm address goes to a pod, and EC2 gives no more.
	if _, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "x", IfName: "eth0",
		RequiresMultiNicAttachment: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{
		{Action: "AssignPrivateIpAddresses", Code: "UnauthorizedOperation"},
		{Action: "CreateNetworkInterface", Code: "UnauthorizedOperation"},
	}}); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(ctx)
	if st := h.pool(1).Stats; st.AvailableIPs != 0 {
		t.Fatalf("card 1: %+v, want no address available", st)
	}
	before := h.pool(0).Stats

	// Each try of a waiting ADD (AssignPod tries again at every change in
	// the pool) takes a card-0 address and gives it back.
	k := key("aws-cni", "m", "eth0")
	for range 5 {
		if _, err := h.n.handout.assign(k, datastore.Metadata{InterfacesCount: 2}, true); !errors.Is(err, datastore.ErrNoAvailableAddress) {
			t.Fatalf("multi-NIC assign with card 1 empty: %v", err)
		}
	}
	if st := h.pool(0).Stats; st.CoolingIPs != before.CoolingIPs || st.AssignedIPs != before.AssignedIPs {
		t.Errorf("card 0 after a failed multi-NIC ADD: %d assigned, %d cooling; before it %d, %d",
			st.AssignedIPs, st.CoolingIPs, before.AssignedIPs, before.CoolingIPs)
	}
	h.checkConsistent()
}
