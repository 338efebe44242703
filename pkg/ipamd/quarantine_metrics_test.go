package ipamd

import (
	"context"
	"testing"
)

// TestQuarantinedCountIsShown: a pod whose address EC2 took away is held
// quarantined; vpccni_quarantined_ip_addresses and /v1/pool's card count
// show it after the reconcile that evicted it, and drop to 0 after its DEL.
// Before, nothing an operator reads told such pods apart.
func TestQuarantinedCountIsShown(t *testing.T) {
	h, _ := heldEvictedHarness(t)
	check := func(when string, want int) {
		t.Helper()
		plain, _ := gathered(t, h)
		if got := plain["vpccni_quarantined_ip_addresses"]; got != float64(want) {
			t.Errorf("%s: vpccni_quarantined_ip_addresses = %v, want %d", when, got, want)
		}
		if cards := h.n.Introspection().Pool().Cards; len(cards) != 1 || cards[0].Quarantined != want {
			t.Errorf("%s: /v1/pool cards %+v, want card 0 with Quarantined %d", when, cards, want)
		}
	}
	check("after the eviction", 1)
	if _, err := h.srv.DelNetwork(context.Background(), delReq("victim")); err != nil {
		t.Fatal(err)
	}
	check("after the DEL", 0)
}
