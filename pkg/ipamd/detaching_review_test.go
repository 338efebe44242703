package ipamd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestRestartWhileAnENIDetachesDoesNotServeIt: ipamd is SIGKILLed while it
// frees an ENI, after the detach and before the delete, and the next
// ipamd starts while EC2 still shows the attachment "detaching". That ENI
// is on its way out: its addresses must not go to pods (they stop routing
// when the detach completes), and it must still be deleted, not left for
// the hourly leaked sweep.
func TestRestartWhileAnENIDetachesDoesNotServeIt(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmENITarget = 2 }})
	h.settle()
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	var goingID, attID string
	going := map[string]bool{}
	for _, e := range inst.ENIs {
		if e.Attachment != nil && e.Attachment.DeviceIndex > 0 {
			goingID, attID = e.ID, e.Attachment.ID
			for _, a := range e.SecondaryIPs {
				going[a.String()] = true
			}
		}
	}
	if goingID == "" {
		t.Fatalf("no secondary ENI after settling: %+v", inst.ENIs)
	}
	const detach = 2 * time.Second
	if err := h.env.Sim.SetFaults(vpcsim.Faults{DetachDelay: vpcsim.Duration(detach)}); err != nil {
		t.Fatal(err)
	}
	// What the killed ipamd did of freeENI: the detach, not the delete.
	if err := h.ec2.DetachENI(context.Background(), attID); err != nil {
		t.Fatal(err)
	}
	h.connect(fastTimes)
	if err := h.n.Init(context.Background()); err != nil {
		t.Fatalf("Init: %v", err)
	}
	if _, ok := h.eni(0, goingID); ok {
		t.Errorf("the detaching ENI %s was adopted: its addresses would be handed to pods", goingID)
	}
	for i := range 20 {
		resp, err := h.srv.AddNetwork(context.Background(), addReq(fmt.Sprint("d-", i)))
		if err != nil {
			break
		}
		for _, m := range resp.GetIpAllocationMetadata() {
			if going[m.GetIpv4Addr()] {
				t.Fatalf("ADD got %s, an address of the detaching ENI %s", m.GetIpv4Addr(), goingID)
			}
		}
	}
	waitFor(t, 10*time.Second, "the detached ENI to be deleted", func() bool {
		h.n.PoolCycle(context.Background())
		for _, e := range h.env.Sim.NetworkInterfaces() {
			if e.ID == goingID {
				return false
			}
		}
		return true
	})
	h.checkConsistent()
}
