package ipamd

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestUnfreedENIRetryBacksOff: two ENIs ipamd let go of cannot be
// detached (DetachNetworkInterface denied). Pool cycles run back to back,
// as ADDs start them: the retries of the free back off, doubling from
// FailureBackoff, so over the window EC2 receives no more detach calls
// than doubling pauses fit in it. Before, every pool cycle described and
// tried to detach both ENIs again.
func TestUnfreedENIRetryBacksOff(t *testing.T) {
	times := fastTimes
	times.FailureBackoff = 100 * time.Millisecond
	h := newHarness(t, harnessOpts{times: &times, cfg: func(c *config.Config) { c.WarmENITarget, c.IPCooldown = 1, 0 }})
	ctx := context.Background()
	pods := map[int]bool{}
	h.setPods(pods, 12)
	if got := h.simCounts(); got.ENIs != 3 {
		t.Fatalf("12 pods: %+v, want 3 ENIs", got)
	}
	if err := h.env.Sim.SetFaults(vpcsim.Faults{DenyActions: []string{"DetachNetworkInterface"}}); err != nil {
		t.Fatal(err)
	}
	h.setPods(pods, 0) // the planner frees the two empty ENIs; EC2 refuses to detach them
	if got := h.simCounts(); got.ENIs != 3 {
		t.Fatalf("after failed frees: %+v, want 3 ENIs still attached", got)
	}
	before := h.calls()
	start := time.Now()
	cycles := 0
	for time.Since(start) < 2*time.Second {
		h.n.PoolCycle(ctx)
		cycles++
	}
	window := time.Since(start)
	d := callDelta(before, h.calls())
	t.Logf("%d pool cycles in %s: EC2 calls %v", cycles, window.Round(time.Millisecond), d)
	// Each retry tries both ENIs; pauses of 100 ms, 200 ms… fit at most
	// 1+log2(window/100ms + 1) retries, one more for the pause before.
	retries := 2 + int(math.Log2(float64(window)/float64(times.FailureBackoff)+1))
	if got := d["DetachNetworkInterface"]; got > int64(2*retries) || got == 0 {
		t.Errorf("%d denied DetachNetworkInterface calls over %d pool cycles in %s, want 1 to %d (a doubling backoff)",
			got, cycles, window.Round(time.Millisecond), 2*retries)
	}
	if err := h.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the two ENIs freed once EC2 lets go", func() bool {
		h.n.PoolCycle(ctx)
		return h.simCounts().ENIs == 1
	})
	h.checkConsistent()
}

// TestDeleteOnTerminationRetryBacksOff: delete-on-termination cannot be
// set on a new ENI (ModifyNetworkInterfaceAttribute denied). Pool cycles
// run back to back, as ADDs start them: the retries back off, doubling
// from FailureBackoff. Before, every pool cycle called EC2 again.
func TestDeleteOnTerminationRetryBacksOff(t *testing.T) {
	times := fastTimes
	times.FailureBackoff = 100 * time.Millisecond
	h := newHarness(t, harnessOpts{times: &times, cfg: func(c *config.Config) { c.WarmENITarget = 2 }})
	if err := h.env.Sim.SetFaults(vpcsim.Faults{DenyActions: []string{"ModifyNetworkInterfaceAttribute"}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h.n.PoolCycle(ctx)
	if got := h.simCounts(); got.ENIs != 2 {
		t.Fatalf("after the pool cycle: %+v, want 2 ENIs", got)
	}
	before := h.calls()
	start := time.Now()
	cycles := 0
	for time.Since(start) < 2*time.Second {
		h.n.PoolCycle(ctx)
		cycles++
	}
	window := time.Since(start)
	d := callDelta(before, h.calls())
	t.Logf("%d pool cycles in %s: EC2 calls %v", cycles, window.Round(time.Millisecond), d)
	bound := 2 + int(math.Log2(float64(window)/float64(times.FailureBackoff)+1))
	if got := d["ModifyNetworkInterfaceAttribute"]; got > int64(bound) || got == 0 {
		t.Errorf("%d denied ModifyNetworkInterfaceAttribute calls over %d pool cycles in %s, want 1 to %d (a doubling backoff)",
			got, cycles, window.Round(time.Millisecond), bound)
	}
	if err := h.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "delete-on-termination set once EC2 lets it", func() bool {
		h.n.PoolCycle(ctx)
		for _, e := range h.env.Sim.NetworkInterfaces() {
			if e.Attachment != nil && e.Attachment.DeviceIndex != 0 && !e.Attachment.DeleteOnTermination {
				return false
			}
		}
		return true
	})
}
