package pool

import "testing"

// TestReviewBurstRoundingEveryMaxPods: under custom networking (the
// primary takes no prefixes) on a card of 8 ENIs × 9 prefixes, a burst of
// waiting ADDs on an empty pool gets CreateENI actions whose ENIs together
// hold no prefix wholly beyond max pods and enough for every waiting ADD
// max pods lets run, for every max pods from 1 to 300 (most not multiples
// of 16) and in secondary-IP mode likewise, address for address; the pool
// then converges with every such pod placed.
func TestReviewBurstRoundingEveryMaxPods(t *testing.T) {
	for _, pd := range []bool{false, true} {
		unit := 1
		if pd {
			unit = IPsPerPrefix
		}
		for maxPods := 1; maxPods <= 300; maxPods++ {
			for _, pending := range []int{1, 17, 100, 200, 400} {
				p := Params{WarmPrefix: 1, WarmENI: 1, PrefixDelegation: pd, CustomNetworking: true,
					MaxENIs: 8, IPv4PerENI: 10, MaxPods: maxPods, CanAllocate: true, CanRelease: true, CanFreeENI: true}
				s := newSim(t, p, 0)
				s.pods = pending
				q := p
				q.Pending = pending
				a := Plan(s.pool, q)
				if a.Kind != CreateENI {
					t.Fatalf("PD=%v max pods %d, %d waiting: plan %+v, want CreateENI", pd, maxPods, pending, a)
				}
				sum := 0
				for _, n := range a.PerENI() {
					if n < 1 || n > 9 {
						t.Fatalf("PD=%v max pods %d, %d waiting: %+v asks %v", pd, maxPods, pending, a, a.PerENI())
					}
					sum += n
				}
				if sum*unit >= maxPods+unit {
					t.Errorf("PD=%v max pods %d, %d waiting: %+v asks %v, %d addresses, a CIDR or more beyond max pods", pd, maxPods, pending, a, a.PerENI(), sum*unit)
				}
				capacity := 7 * 9 * unit
				if want := min(pending, maxPods, capacity); sum*unit < want && a.ENIs > 1 {
					t.Errorf("PD=%v max pods %d, %d waiting: %+v asks %v, %d addresses for %d pods that may run", pd, maxPods, pending, a, a.PerENI(), sum*unit, want)
				}
				s.convergeChecked("burst")
				if want := min(pending, maxPods, capacity); s.placed() < want {
					t.Errorf("PD=%v max pods %d, %d waiting: %d placed, want %d (starved %q)", pd, maxPods, pending, s.placed(), want, s.starved)
				}
			}
		}
	}
}
