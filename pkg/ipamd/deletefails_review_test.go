package ipamd

import (
	"context"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestDetachedENIWhoseDeleteFailsFreesItsSlot: EC2 detaches the ENIs ipamd
// frees but refuses to delete them (DependencyViolation, for as long as
// something else references them). A detached ENI takes no ENI slot of
// the instance, so the pool grows onto its slot when pods come rather than
// starving at a limit it is not at; the leaked-ENI sweep deletes the ENI
// once EC2 lets it.
func TestDetachedENIWhoseDeleteFailsFreesItsSlot(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmENITarget, c.IPCooldown = 3, 0 }})
	h.settle()
	if got := h.simCounts().ENIs; got != 3 {
		t.Fatalf("%d ENIs after settling with WARM_ENI_TARGET=3, want m5.large's 3", got)
	}
	if err := h.env.Sim.SetFaults(vpcsimFaults("DeleteNetworkInterface", "DependencyViolation")); err != nil {
		t.Fatal(err)
	}
	// The same node with WARM_ENI_TARGET=1: two ENIs are extra.
	h.cfg.WarmENITarget = 1
	h.connect(fastTimes)
	if err := h.n.Init(context.Background()); err != nil {
		t.Fatalf("Init: %v", err)
	}
	for range 4 {
		h.n.PoolCycle(context.Background())
	}
	if got, left := h.simCounts().ENIs, len(h.unattachedENIs()); got != 1 || left != 2 {
		t.Fatalf("after the frees: %d ENIs attached and %d detached, want 1 and 2 (deletes refused)", got, left)
	}
	// 12 pods need a second ENI (the primary holds 9).
	pods := map[int]bool{}
	h.setPods(pods, 12)
	if got := h.simCounts().ENIs; got < 2 {
		starved, err := h.state(0)
		t.Errorf("12 pods: %d ENIs attached; the pool did not grow onto a free slot (starved %q, %v)", got, starved, err)
	}
	// Once EC2 lets them go, the leaked-ENI sweep deletes them.
	if err := h.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.n.leaked.SweepLeaked(context.Background(), time.Nanosecond); err != nil {
		t.Fatalf("leaked-ENI sweep: %v", err)
	}
	if left := h.unattachedENIs(); len(left) != 0 {
		t.Errorf("detached ENIs left after the leaked-ENI sweep: %v", left)
	}
	h.checkConsistent()
}
