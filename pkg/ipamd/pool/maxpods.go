package pool

import "strconv"

// Max pods limits pods, not addresses: the cap on growth counts the
// addresses held for pods (assigned or available) and not the cooling
// ones, which serve no pod until their cooldown ends and are never handed
// out early (docs/compatibility.md, "Warm-pool arithmetic"). Counting them
// capped sustained churn at (max pods − live) / cooldown.

// noCap stands for "no max pods" in room arithmetic: larger than any pool.
const noCap = 1 << 30

// podRoom is how many addresses the pool may still add under max pods:
// max pods − (total − cooling), at most 0 below; noCap without max pods.
func (p Params) podRoom(s Stats) int {
	if p.MaxPods <= 0 {
		return noCap
	}
	return max(p.MaxPods-(s.Total-s.Cooling), 0)
}

// roomUnits is podRoom in the planner's units: addresses, or whole /28
// prefixes under prefix delegation (the last one may pass max pods by
// less than a prefix, as it always has).
func (p Params) roomUnits(s Stats) int {
	r := p.podRoom(s)
	if p.PrefixDelegation && r < noCap {
		return ceilDiv(r, IPsPerPrefix)
	}
	return r
}

// aboveMaxPods is how many CIDRs (addresses, or whole /28s under prefix
// delegation) the pool holds for pods beyond max pods: growth for churn
// takes the pool past max pods in total, and once the cooldowns end
// those addresses are never needed (pods are at most max pods), so they
// are released like any above the warm targets.
func (p Params) aboveMaxPods(s Stats) int {
	if p.MaxPods <= 0 {
		return 0
	}
	over := s.Total - s.Cooling - p.MaxPods
	if p.PrefixDelegation {
		over /= IPsPerPrefix // only prefixes wholly beyond max pods
	}
	return max(over, 0)
}

// atMaxPods reports whether the addresses held for pods reach max pods.
func (p Params) atMaxPods(s Stats) bool { return p.MaxPods > 0 && p.podRoom(s) == 0 }

// AtMaxPods reports whether the card's addresses held for pods (assigned
// or available) reach p.MaxPods; only MaxPods and PrefixDelegation count.
// A DEL can end it (its address starts cooling), not only a pool action.
func AtMaxPods(pool Pool, p Params) bool { return p.atMaxPods(pool.Stats(p.PrefixDelegation)) }

// maxPodsReason names a pool that may not grow for max pods.
func maxPodsReason(p Params, s Stats) string {
	msg := "max pods reached: the pool holds " + strconv.Itoa(s.Total-s.Cooling) + " addresses for pods (" +
		strconv.Itoa(s.Assigned) + " assigned, " + strconv.Itoa(s.Available) + " available) for a node limit of " +
		strconv.Itoa(p.MaxPods) + " pods"
	if s.Cooling > 0 {
		msg += "; " + strconv.Itoa(s.Cooling) + " more are cooling and come back when their cooldown ends"
	}
	return msg
}

// splitCount spreads total addresses (or prefixes) as evenly as it can
// over k new ENIs of at most perENI each: k ENIs asked for the same count
// each would pass total by up to k − 1 (whole /28s under prefix
// delegation, past max pods). Fewer than k when total is smaller than k.
func splitCount(total, k, perENI int) []int {
	total = min(total, k*perENI)
	k = min(k, total)
	out := make([]int, 0, max(k, 0))
	for i := range k {
		n := total / k
		if i < total%k {
			n++
		}
		out = append(out, n)
	}
	return out
}
