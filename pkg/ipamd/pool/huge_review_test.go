package pool

import (
	"math"
	"testing"
)

// TestReviewHugeTargetsBehaveAsAskForEverything: a warm target set to the
// largest value the environment variable parses to (math.MaxInt, e.g.
// WARM_ENI_TARGET=9223372036854775807) means "as much as the node can
// hold", exactly as a merely large one (1000000) does: the pool grows to
// its limits and nothing is released or freed. The arithmetic must not
// wrap around.
func TestReviewHugeTargetsBehaveAsAskForEverything(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*Params, int)
		pd   bool
	}{
		{"WARM_ENI_TARGET", func(p *Params, v int) { p.WarmENI = v }, false},
		{"WARM_IP_TARGET", func(p *Params, v int) { p.WarmIP = v }, false},
		{"MINIMUM_IP_TARGET", func(p *Params, v int) { p.MinimumIP = v }, false},
		{"WARM_IP_TARGET with prefixes", func(p *Params, v int) { p.WarmIP = v }, true},
		{"MINIMUM_IP_TARGET with prefixes", func(p *Params, v int) { p.MinimumIP = v }, true},
		{"WARM_PREFIX_TARGET", func(p *Params, v int) { p.WarmPrefix = v }, true},
	} {
		for _, perENI := range []int{10, 15} { // m5.large, m5.xlarge
			var want counts
			for _, v := range []int{1_000_000, math.MaxInt} {
				p := Params{PrefixDelegation: tc.pd, MaxENIs: 3, IPv4PerENI: perENI, MaxPods: 10000,
					CanAllocate: true, CanRelease: true, CanFreeENI: true}
				tc.set(&p, v)
				s := newSim(t, p, 0)
				s.pods = 5
				s.convergeChecked(tc.name)
				got := s.counts()
				if v == 1_000_000 {
					want = got
					if got.ENIs != 3 {
						t.Errorf("%s=%d: %+v, want every ENI attached", tc.name, v, got)
					}
					continue
				}
				if got != want {
					t.Errorf("%s=%d, %d addresses per ENI: %+v, want %+v as with %s=1000000", tc.name, v, perENI, got, want, tc.name)
				}
			}
		}
	}
}
