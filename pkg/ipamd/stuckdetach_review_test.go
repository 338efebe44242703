package ipamd

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestStuckDetachDoesNotStallThePool: EC2 keeps an ENI ipamd frees in
// "detaching" far longer than a detach takes (it happens). The free gives
// up after its bound instead of retrying the delete for as long as ipamd
// runs: the pool cycle, which holds the lock every pool change and the
// reconcile need, returns; the ENI is out of the datastore and still
// takes its slot (it is attached in EC2) until a later cycle deletes it,
// and those later cycles return as well.
func TestStuckDetachDoesNotStallThePool(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmENITarget = 3 }})
	h.settle()
	if got := h.simCounts().ENIs; got != 3 {
		t.Fatalf("%d ENIs after settling with WARM_ENI_TARGET=3, want 3", got)
	}
	if err := h.env.Sim.SetFaults(vpcsim.Faults{DetachDelay: vpcsim.Duration(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// The same node with a smaller target: one ENI is now extra.
	h.cfg.WarmENITarget = 1
	times := fastTimes
	times.FreeWait = 200 * time.Millisecond
	h.connect(times)
	if err := h.n.Init(context.Background()); err != nil {
		t.Fatalf("Init: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cycle := func(what string) {
		t.Helper()
		done := make(chan struct{})
		go func() { defer close(done); h.n.PoolCycle(ctx) }()
		waitFor(t, 20*time.Second, what, func() bool {
			select {
			case <-done:
				return true
			default:
				return false
			}
		})
	}
	cycle("the pool cycle that frees an ENI whose detach never completes to return")
	var stuck string
	for _, e := range h.env.Sim.NetworkInterfaces() {
		if e.Attachment != nil && e.Attachment.Status == "detaching" {
			stuck = e.ID
		}
	}
	if stuck == "" {
		t.Fatalf("no ENI is detaching: the pool freed nothing")
	}
	if _, ok := h.eni(0, stuck); ok {
		t.Errorf("the detaching ENI %s is still in the datastore", stuck)
	}
	if c := h.n.cards.of(0); !slices.Contains(c.unfreedIDs(), stuck) {
		t.Errorf("the detaching ENI %s does not keep its ENI slot (unfreed: %v)", stuck, c.unfreedIDs())
	}
	cycle("the next pool cycle, which retries the free, to return")
	// Every ENI EC2 attaches is the datastore's, or detaching and counted.
	for _, e := range h.env.Sim.NetworkInterfaces() {
		if e.Attachment == nil {
			continue
		}
		_, held := h.eni(0, e.ID)
		counted := slices.Contains(h.n.cards.of(0).unfreedIDs(), e.ID)
		if held == (e.Attachment.Status == "detaching") || held == counted {
			t.Errorf("ENI %s (%s): in the datastore %v, slot kept as unfreed %v", e.ID, e.Attachment.Status, held, counted)
		}
	}
}
