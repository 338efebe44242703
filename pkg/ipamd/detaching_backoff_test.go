package ipamd

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestStuckDetachLookedAtWithBackoff: EC2 keeps an ENI ipamd let go of in
// "detaching" (here 4 s; it happens for minutes). Pool cycles run back to back, as
// ADDs start them: the look at where that ENI stands (a
// DescribeNetworkInterfaces) backs off, doubling from FailureBackoff,
// instead of going to EC2 on every cycle; once EC2 has detached it, it is
// deleted and its slot is free.
func TestStuckDetachLookedAtWithBackoff(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmENITarget = 2 }})
	h.settle()
	if got := h.simCounts().ENIs; got != 2 {
		t.Fatalf("%d ENIs after settling with WARM_ENI_TARGET=2, want 2", got)
	}
	if err := h.env.Sim.SetFaults(vpcsim.Faults{DetachDelay: vpcsim.Duration(4 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	// The same node with a smaller target: one ENI is now extra.
	h.cfg.WarmENITarget = 1
	times := fastTimes
	times.FreeWait = 100 * time.Millisecond
	times.FailureBackoff = 100 * time.Millisecond
	h.connect(times)
	if err := h.n.Init(context.Background()); err != nil {
		t.Fatalf("Init: %v", err)
	}
	ctx := context.Background()
	h.n.PoolCycle(ctx) // frees the extra ENI: EC2 keeps it detaching
	if c := h.n.cards.of(0); len(c.unfreedIDs()) != 1 {
		t.Fatalf("unfreed ENIs %v, want the one EC2 keeps detaching", c.unfreedIDs())
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
	// Pauses of 100 ms, 200 ms… fit at most 1+log2(window/100ms + 1)
	// looks, one more for the pause before the window.
	bound := 2 + int(math.Log2(float64(window)/float64(times.FailureBackoff)+1))
	if got := d["DescribeNetworkInterfaces"]; got > int64(bound) || got == 0 {
		t.Errorf("%d DescribeNetworkInterfaces calls over %d pool cycles in %s while EC2 detaches an ENI, want 1 to %d (a doubling backoff)",
			got, cycles, window.Round(time.Millisecond), bound)
	}
	waitFor(t, 20*time.Second, "the ENI deleted once EC2 has detached it", func() bool {
		h.n.PoolCycle(ctx)
		return h.simCounts().ENIs == 1 && len(h.n.cards.of(0).unfreedIDs()) == 0
	})
}
