package pool

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// churnCase is one configuration for the randomized churn review.
type churnCase struct {
	name string
	p    Params
	live int // pods kept running through the churn
	card int // > 0: a card pods spill to, planned without waiting ADDs
}

func churnCases() []churnCase {
	type inst struct {
		name          string
		maxENIs, ipv4 int
	}
	var out []churnCase
	for _, it := range []inst{{"m5.large", 3, 10}, {"m5.xlarge", 4, 15}, {"t3.medium", 3, 6}} {
		for _, pd := range []bool{false, true} {
			for _, tg := range []struct{ weni, wip, mip, wpfx int }{{1, 0, 0, 0}, {0, 5, 10, 0}, {0, 0, 20, 0}, {0, 0, 0, 1}, {2, 0, 0, 2}} {
				if pd && tg.wip == 0 && tg.mip == 0 && tg.wpfx == 0 {
					continue
				}
				if !pd && tg.wpfx > 0 {
					continue
				}
				for _, cn := range []bool{false, true} {
					for _, trunk := range []bool{false, true} {
						for _, mp := range []int{7, 20, 29, 50, 110} {
							for _, live := range []int{0, 5, mp - 1, mp} {
								if live < 0 {
									continue
								}
								p := Params{WarmENI: tg.weni, WarmIP: tg.wip, MinimumIP: tg.mip, WarmPrefix: tg.wpfx, PrefixDelegation: pd,
									MaxENIs: it.maxENIs, IPv4PerENI: it.ipv4, MaxPods: mp, CustomNetworking: cn, ReserveTrunk: trunk,
									CanAllocate: true, CanRelease: true, CanFreeENI: true}
								out = append(out, churnCase{
									name: fmt.Sprintf("%s/PD=%v/WENI=%d,WIP=%d,MIP=%d,WPFX=%d/CN=%v/trunk=%v/maxPods=%d/live=%d",
										it.name, pd, tg.weni, tg.wip, tg.mip, tg.wpfx, cn, trunk, mp, live),
									p: p, live: live})
							}
						}
					}
				}
			}
		}
	}
	// Cards > 0 (pods spill there; the engine plans them with no waiting
	// ADDs, so only their warm target of one grows them).
	for _, mp := range []int{7, 20, 110} {
		for _, pd := range []bool{false, true} {
			p := Params{WarmPrefix: 1, PrefixDelegation: pd, MaxENIs: 4, IPv4PerENI: 15, MaxPods: mp,
				CanAllocate: true, CanRelease: true, CanFreeENI: true}
			out = append(out, churnCase{name: fmt.Sprintf("card1/m5.xlarge/PD=%v/maxPods=%d", pd, mp), p: p, live: min(mp, 12), card: 1})
		}
	}
	return out
}

// held is the addresses held for pods: total − cooling.
func held(s Stats) int { return s.Total - s.Cooling }

// capacity is the pod addresses the card could hold with every ENI slot
// attached and full (the primary left out under custom networking, one
// slot kept for a trunk).
func capacity(p Params) int {
	enis := p.MaxENIs
	if p.ReserveTrunk {
		enis--
	}
	if p.CustomNetworking {
		enis--
	}
	n := enis * p.slotsPerENI()
	if p.PrefixDelegation {
		n *= IPsPerPrefix
	}
	return n
}

// convergeChecked is converge with the max-pods bound checked on every
// growth action: none when the pool holds max pods for pods, and none
// that passes max pods by a prefix or more.
func (s *sim) convergeChecked(where string) {
	s.t.Helper()
	unit := 1
	if s.p.PrefixDelegation {
		unit = IPsPerPrefix
	}
	s.starved = ""
	for range 200 {
		p := s.p
		p.Pending = s.place()
		if s.pool.Card > 0 {
			p.Pending = 0 // as the engine plans cards > 0
		}
		a := Plan(s.pool, p)
		if a.Kind == None {
			if a.Starved {
				s.starved = a.Reason
			}
			return
		}
		before := s.pool.Stats(p.PrefixDelegation)
		s.apply(a)
		after := s.pool.Stats(p.PrefixDelegation)
		// A consolidation moves warm addresses off an empty ENI it frees
		// next: growth for a moment, not for good.
		moving := strings.HasPrefix(a.Reason, "moving warm capacity")
		if after.Total > before.Total && p.MaxPods > 0 && !moving {
			if held(before) >= p.MaxPods {
				s.t.Fatalf("%s: %+v grew a pool holding %d for pods (max pods %d, %+v)", where, a, held(before), p.MaxPods, before)
			}
			if held(after) > p.MaxPods+unit-1 {
				s.t.Fatalf("%s: %+v took the pool to %d held for pods, max pods %d (%+v → %+v)", where, a, held(after), p.MaxPods, before, after)
			}
		}
	}
	s.t.Fatalf("%s: no convergence after 200 actions: %+v", where, s.pool)
}

// expire ends the cooldown of about half the cooling addresses.
func (s *sim) expire(r *rand.Rand) {
	for i := range s.pool.ENIs {
		for j := range s.pool.ENIs[i].CIDRs {
			c := &s.pool.ENIs[i].CIDRs[j]
			if c.Cooling > 0 {
				c.Cooling -= r.IntN(c.Cooling + 1)
			}
		}
	}
}

// TestReviewChurnBounds churns pods (DEL then ADD, the DEL's address
// cooling) over every configuration and checks: no growth beyond max pods
// for pods; a waiting ADD within max pods only at the ENI hard limit; once
// churn stops and every cooldown ends, the pool settles where a pool that
// never churned settles (same addresses held, no more ENIs).
func TestReviewChurnBounds(t *testing.T) {
	for _, tc := range churnCases() {
		r := rand.New(rand.NewPCG(1, uint64(len(tc.name))))
		s := newSim(t, tc.p, 0)
		s.pool.Card = tc.card
		s.pods = tc.live
		s.convergeChecked(tc.name + " start")
		for i := range 150 {
			k := 1 + r.IntN(3)
			k = min(k, s.placed())
			s.remove(k, true)
			if r.IntN(10) == 0 {
				s.expire(r)
			}
			where := fmt.Sprintf("%s churn %d", tc.name, i)
			s.convergeChecked(where)
			st := s.pool.Stats(tc.p.PrefixDelegation)
			if w := s.pods - s.placed(); w > 0 && s.pods <= tc.p.MaxPods {
				// Only the ENIs' hard limit may leave a pod within max pods waiting.
				if l, ok := AtHardLimit(s.pool, tc.p); !ok || l.MaxPods {
					t.Fatalf("%s: %d pods wait with %+v, starved %q, not at the ENI limit (%+v, %v)", where, w, st, s.starved, l, ok)
				}
				if st.Total-st.Cooling >= s.pods && st.Available > 0 {
					t.Fatalf("%s: pods wait beside available addresses: %+v", where, st)
				}
			}
		}
		s.cool()
		for range 5 {
			s.convergeChecked(tc.name + " settle")
		}
		fresh := newSim(t, tc.p, 0)
		fresh.pool.Card = tc.card
		fresh.pods = s.pods
		fresh.convergeChecked(tc.name + " fresh")
		for range 5 {
			fresh.convergeChecked(tc.name + " fresh")
		}
		// Pods sit where churn left them, so the settled pool may span
		// more CIDRs than a fresh one; but nothing beyond max pods stays
		// releasable, and no ENI holding no pod stays beyond a fresh
		// pool's ENIs.
		st := s.pool.Stats(tc.p.PrefixDelegation)
		if over := aboveMaxPodsReview(tc.p, st); over > 0 {
			if a, ok := planRelease(s.pool, tc.p, over); ok {
				t.Errorf("%s: after churn and cooldowns %d held for pods, max pods %d, and %v still releasable", tc.name, held(st), tc.p.MaxPods, a.CIDRs)
			}
		}
		if len(s.pool.ENIs) > len(fresh.pool.ENIs) {
			for _, e := range s.pool.ENIs {
				if !e.Primary && eniUsed(e) == 0 {
					t.Errorf("%s: after churn and cooldowns ENI %s (%d CIDRs) holds no pod and stays; %d ENIs %v, a pool that never churned has %d %v",
						tc.name, e.ID, len(e.CIDRs), len(s.pool.ENIs), s.counts(), len(fresh.pool.ENIs), fresh.counts())
				}
			}
		}
	}
}

// aboveMaxPodsReview is the CIDRs held for pods wholly beyond max pods,
// worked out here rather than trusted from the planner.
func aboveMaxPodsReview(p Params, s Stats) int {
	if p.MaxPods <= 0 {
		return 0
	}
	over := s.Total - s.Cooling - p.MaxPods
	if p.PrefixDelegation {
		over /= IPsPerPrefix
	}
	return max(over, 0)
}
