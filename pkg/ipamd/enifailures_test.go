package ipamd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestDeleteOnTerminationFailureKeepsENI: when only delete-on-termination
// fails after a successful attach, the ENI is kept and used (it counts
// against the ENI limit, its device stays taken), nothing is detached,
// deleted or created again, and the next pool cycle sets the flag. Before,
// the ENI was detached and deleted, and when that undo failed too it stayed
// attached outside the datastore while ipamd kept creating ENIs that could
// not attach.
func TestDeleteOnTerminationFailureKeepsENI(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmENITarget = 2 }})
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "ModifyNetworkInterfaceAttribute", Code: "IncorrectState", Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before := h.calls()
	h.n.PoolCycle(ctx)
	if got := h.simCounts(); got != (simCounts{2, 18, 0}) {
		t.Errorf("after the failed delete-on-termination: %+v, want 2 ENIs with 18 addresses", got)
	}
	h.checkConsistent()
	d := callDelta(before, h.calls())
	if d["CreateNetworkInterface"] != 1 || d["AttachNetworkInterface"] != 1 || d["DetachNetworkInterface"] != 0 || d["DeleteNetworkInterface"] != 0 {
		t.Errorf("EC2 calls %v: want one create and one attach, no detach or delete", d)
	}
	var added string
	for _, e := range h.env.Sim.NetworkInterfaces() {
		if e.Attachment != nil && e.Attachment.DeviceIndex != 0 {
			added = e.ID
			if e.Attachment.DeleteOnTermination {
				t.Errorf("ENI %s has delete-on-termination although the call failed", e.ID)
			}
		}
	}
	if added == "" {
		t.Fatal("no ENI besides the primary is attached")
	}
	h.n.PoolCycle(ctx) // the fault was one-shot: the retry succeeds
	for _, e := range h.env.Sim.NetworkInterfaces() {
		if e.ID == added && (e.Attachment == nil || !e.Attachment.DeleteOnTermination) {
			t.Errorf("ENI %s after the next pool cycle: attachment %+v, want delete-on-termination", e.ID, e.Attachment)
		}
	}
	d = callDelta(before, h.calls())
	if d["CreateNetworkInterface"] != 1 {
		t.Errorf("CreateNetworkInterface calls = %d, want 1", d["CreateNetworkInterface"])
	}
	h.checkConsistent()
}

// TestFastIntervalsShortenInsufficientCooldown: under
// VPC_CNI_TEST_FAST_INTERVALS the no-growth cooldown after
// InsufficientFreeAddressesInSubnet is seconds, not upstream's two minutes,
// so a test that hits it (the chaos run) does not stall.
func TestFastIntervalsShortenInsufficientCooldown(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmENITarget, c.FastIntervals, c.EnableSubnetDiscovery = 2, true, false }})
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "CreateNetworkInterface", Code: awsutils.CodeInsufficientFreeAddresses, Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h.n.PoolCycle(ctx)
	if got := h.simCounts(); got.ENIs != 1 {
		t.Fatalf("after InsufficientFreeAddressesInSubnet: %+v, want the primary ENI only", got)
	}
	start := time.Now()
	deadline := start.Add(15 * time.Second) // well below upstream's 120 s
	for h.simCounts().ENIs < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("no second ENI %s after the subnet-full error: the cooldown is not shortened", time.Since(start).Round(time.Second))
		}
		h.n.PoolCycle(ctx)
		time.Sleep(50 * time.Millisecond) // pacing between polls of the condition
	}
	t.Logf("pool grew again after %s", time.Since(start).Round(time.Millisecond))
	h.checkConsistent()
}

// TestFailedFreeKeepsSlotTaken: an ENI ipamd took out of its store but
// could not detach still holds its device index and an ENI slot. Until it
// is freed, a pool that wants to grow creates no ENI that can only fail to
// attach (AttachmentLimitExceeded, or InvalidParameterValue for its device
// index); once EC2 lets go, the next pool cycle frees it.
func TestFailedFreeKeepsSlotTaken(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmENITarget, c.IPCooldown = 1, 0 }})
	ctx := context.Background()
	pods := map[int]bool{}
	h.setPods(pods, 12)
	if got := h.simCounts(); got.ENIs != 3 {
		t.Fatalf("12 pods: %+v, want 3 ENIs (the limit of m5.large)", got)
	}
	if err := h.env.Sim.SetFaults(vpcsimFaults("DetachNetworkInterface", "IncorrectState")); err != nil {
		t.Fatal(err)
	}
	h.setPods(pods, 0) // the planner frees the two empty ENIs; EC2 refuses to detach them
	if got := h.simCounts(); got.ENIs != 3 {
		t.Fatalf("after failed frees: %+v, want 3 ENIs still attached", got)
	}

	before := h.calls()
	// 20 pods come: those the primary ENI cannot serve wait, and the pool
	// wants more ENIs.
	actx, cancel := context.WithCancel(ctx)
	answered := make(chan string, 20) // the pod's id when it got an address
	for i := range 20 {
		go func() {
			id := fmt.Sprint("waiting-", i)
			if _, err := h.srv.AddNetwork(actx, addReq(id)); err != nil {
				id = ""
			}
			answered <- id
		}()
	}
	waitFor(t, 10*time.Second, "ADDs waiting for the pool", func() bool { return h.waitingADDs() > 0 })
	for range 5 {
		h.n.PoolCycle(ctx)
	}
	cancel()
	for range 20 {
		if id := <-answered; id != "" {
			if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: id, IfName: "eth0"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	d := callDelta(before, h.calls())
	if d["CreateNetworkInterface"] != 0 || d["AttachNetworkInterface"] != 0 {
		t.Errorf("EC2 calls while two ENIs could not be detached: %v; want no create or attach (no slot is free)", d)
	}
	if e := h.env.Sim.Stats().Errors["AttachNetworkInterface"]; len(e) > 0 {
		t.Errorf("attach errors: %v", e)
	}

	if err := h.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(ctx) // frees the two left behind
	if got := h.simCounts(); got.ENIs != 1 {
		t.Errorf("after EC2 lets go: %+v, want the primary ENI only", got)
	}
	if left := h.unattachedENIs(); len(left) > 0 {
		t.Errorf("unattached ENIs left: %v", left)
	}
	h.checkConsistent()
}
