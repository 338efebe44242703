package pool

import (
	"slices"
	"testing"
)

// TestPlanSizesENIsToTheWaitingDemand: waiting ADDs beyond what one new
// ENI holds get several ENIs in one action, never more than the free ENI
// slots (the trunk reservation included) nor beyond max pods.
func TestPlanSizesENIsToTheWaitingDemand(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pending int
		maxPods int
		trunk   bool
		want    int
	}{
		{"one ENI's worth", 9, 0, false, 1},
		{"two ENIs' worth", 10, 0, false, 2},
		{"more than the slots", 40, 0, false, 2},
		{"trunk slot reserved", 40, 0, true, 1},
		{"max pods caps it", 40, 12, false, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := m5large(Params{WarmENI: 1, Pending: tc.pending, MaxPods: tc.maxPods, ReserveTrunk: tc.trunk})
			s := newSim(t, p, 0)
			full := Pool{ENIs: []ENI{{ID: "eni-0", Primary: true, CIDRs: s.cidrs(9, false)}}}
			for i := range full.ENIs[0].CIDRs {
				full.ENIs[0].CIDRs[i].Assigned = 1
			}
			a := Plan(full, p)
			if a.Kind != CreateENI || a.ENIs != tc.want || a.Count != 9 && tc.want > 1 {
				t.Errorf("plan %+v, want CreateENI × %d", a, tc.want)
			}
		})
	}
}

// TestPlanWaitsForCooldownsInsteadOfAnENI: with WARM_IP_TARGET=1 met by
// nothing but the waiting demand, two ADDs waiting on a full ENI get no new
// ENI when two cooldowns end sooner than it could attach; one cooldown for
// two ADDs is not enough. The warm target itself still grows the pool.
func TestPlanWaitsForCooldownsInsteadOfAnENI(t *testing.T) {
	for _, tc := range []struct {
		name          string
		warmIP        int
		soon, pending int
		create        bool
	}{
		{"cooldowns serve both", 0, 2, 2, false},
		{"one cooldown for two", 0, 1, 2, true},
		{"none waiting", 0, 2, 0, false},
		{"warm target still grows", 3, 2, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := m5large(Params{MinimumIP: 9, WarmIP: tc.warmIP, Pending: tc.pending, CoolingSoon: tc.soon})
			s := newSim(t, p, 0)
			full := Pool{ENIs: []ENI{{ID: "eni-0", Primary: true, CIDRs: s.cidrs(9, false)}}}
			for i := range full.ENIs[0].CIDRs {
				full.ENIs[0].CIDRs[i].Assigned = 1
			}
			full.ENIs[0].CIDRs[0].Assigned, full.ENIs[0].CIDRs[0].Cooling = 0, 1
			full.ENIs[0].CIDRs[1].Assigned, full.ENIs[0].CIDRs[1].Cooling = 0, 1
			if a := Plan(full, p); (a.Kind == CreateENI) != tc.create {
				t.Errorf("plan %+v, want CreateENI %v", a, tc.create)
			}
		})
	}
}

// TestPlanAssignsForWaitersAndWarmTogether: with IP targets, ADDs waiting
// on an empty pool get one assign that also leaves the warm target met
// once they took theirs (upstream and our earlier plan asked twice: the
// waiters' share, then the warm one). In prefix mode the same sum is
// rounded up to prefixes.
func TestPlanAssignsForWaitersAndWarmTogether(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pd      bool
		warmIP  int
		pending int
		want    int
	}{
		{"5 waiting, WARM_IP_TARGET=1", false, 1, 5, 6},
		{"5 waiting, WARM_IP_TARGET=3", false, 3, 5, 8},
		{"more than the ENI's free slots", false, 3, 9, 8},
		{"prefixes: 15 waiting + 3 warm", true, 3, 15, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := m5large(Params{WarmIP: tc.warmIP, Pending: tc.pending, PrefixDelegation: tc.pd, MaxPods: 110})
			s := newSim(t, p, 0)
			pool := Pool{ENIs: []ENI{{ID: "eni-0", Primary: true, CIDRs: s.cidrs(1, tc.pd)}}}
			for i := range pool.ENIs[0].CIDRs {
				pool.ENIs[0].CIDRs[i].Assigned = pool.ENIs[0].CIDRs[i].Size()
			}
			a := Plan(pool, p)
			kind := AssignIPs
			if tc.pd {
				kind = AssignPrefixes
			}
			if a.Kind != kind || a.Count != tc.want {
				t.Errorf("plan %+v, want %s of %d", a, kind, tc.want)
			}
		})
	}
}

// TestMoreENIsForADDsArrivingDuringGrowth: ADDs that arrive while an
// assign or ENIs are under way get ENIs of their own at once when what is
// coming cannot hold them, never while an ENI could still take addresses,
// never beyond the free ENI slots, max pods or what cooldowns serve, and
// none while growth is paused.
func TestMoreENIsForADDsArrivingDuringGrowth(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		pending, inFlight, soon int
		primaryUsed, incoming   int // the primary's addresses assigned, and being assigned
		maxPods                 int
		paused                  bool
		want                    int
	}{
		{"in-flight ENI holds them", 9, 1, 0, 9, 0, 0, false, 0},
		{"one more ENI", 10, 1, 0, 9, 0, 0, false, 1},
		{"slots cap it", 30, 1, 0, 9, 0, 0, false, 1},
		{"no slot left", 30, 2, 0, 9, 0, 0, false, 0},
		{"cooldowns serve the rest", 10, 1, 1, 9, 0, 0, false, 0},
		{"max pods caps it", 30, 1, 0, 9, 0, 18, false, 0},
		{"growth paused", 10, 1, 0, 9, 0, 0, true, 0},
		{"none waiting", 0, 1, 0, 9, 0, 0, false, 0},
		{"assign under way holds them", 9, 0, 0, 0, 9, 0, false, 0},
		{"assign under way, ENIs for the rest", 20, 0, 0, 0, 9, 0, false, 2},
		{"primary could take more", 20, 0, 0, 0, 5, 0, false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := m5large(Params{WarmENI: 1, Pending: tc.pending, CoolingSoon: tc.soon, MaxPods: tc.maxPods})
			p.CanAllocate = !tc.paused
			s := newSim(t, p, 0)
			primary := Pool{ENIs: []ENI{{ID: "eni-0", Primary: true, CIDRs: s.cidrs(tc.primaryUsed, false)}}}
			for i := range primary.ENIs[0].CIDRs {
				primary.ENIs[0].CIDRs[i].Assigned = 1
			}
			if got := MoreENIs(primary, p, tc.inFlight, 9, tc.incoming); got != tc.want {
				t.Errorf("MoreENIs = %d, want %d", got, tc.want)
			}
		})
	}
}

// TestWaitingADDsBeyondMaxPodsGrowNothing: under prefix delegation with
// max pods 110 and 80 addresses held (five full prefixes), 50 waiting ADDs
// get the two prefixes the last 30 pods can use, not four.
func TestWaitingADDsBeyondMaxPodsGrowNothing(t *testing.T) {
	p := m5large(Params{PrefixDelegation: true, WarmPrefix: 1, CustomNetworking: true, Pending: 50, MaxPods: 110})
	s := newSim(t, p, 0)
	full := Pool{ENIs: []ENI{{ID: "eni-0", Primary: true}, {ID: "eni-1", CIDRs: s.cidrs(5, true)}}}
	for i := range full.ENIs[1].CIDRs {
		full.ENIs[1].CIDRs[i].Assigned = IPsPerPrefix
	}
	a := Plan(full, p)
	if a.Kind != AssignPrefixes || a.Count != 2 {
		t.Errorf("plan %+v, want 2 prefixes: 110 pods in 7 prefixes", a)
	}
}

// TestPerNewENIStaysWithinMaxPods: ENIs started for ADDs arriving during
// growth ask for a whole ENI's worth each, but together no more than max
// pods leaves room for (under prefix delegation in whole prefixes, shared
// among them rather than rounded up for each).
func TestPerNewENIStaysWithinMaxPods(t *testing.T) {
	for _, tc := range []struct {
		name     string
		pd       bool
		maxPods  int
		inFlight int
		n        int
		want     []int
	}{
		{"secondary: a whole ENI", false, 29, 1, 1, []int{9}},
		{"PD without max pods", true, 0, 1, 1, []int{9}},
		{"PD: room for 30 more after one in flight", true, 80 + 144 + 30, 1, 1, []int{2}},
		{"PD: room for plenty", true, 1000, 1, 1, []int{9}},
		{"PD: two ENIs share 3 prefixes' room", true, 80 + 144 + 40, 1, 2, []int{2, 1}},
		{"PD: two full ENIs", true, 1000, 1, 2, []int{9, 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := m5large(Params{PrefixDelegation: tc.pd, CustomNetworking: true, Pending: 200})
			p.MaxPods = tc.maxPods
			s := newSim(t, p, 0)
			pl := Pool{ENIs: []ENI{{ID: "eni-0", Primary: true}, {ID: "eni-1", CIDRs: s.cidrs(5, tc.pd)}}}
			if got := PerNewENI(pl, p, tc.inFlight, 9, 0, tc.n); !slices.Equal(got, tc.want) {
				t.Errorf("PerNewENI = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestBurstENIsShareMaxPodsUnderPD: under prefix delegation with custom
// networking (a t3.medium: 5 prefixes per ENI), 200 waiting ADDs and max
// pods 110 get two ENIs, but 4 prefixes each (128 addresses), not 5 (160).
func TestBurstENIsShareMaxPodsUnderPD(t *testing.T) {
	p := m5large(Params{PrefixDelegation: true, WarmPrefix: 1, CustomNetworking: true, Pending: 200, MaxPods: 110})
	p.IPv4PerENI = 6
	a := Plan(Pool{ENIs: []ENI{{ID: "eni-0", Primary: true}}}, p)
	if a.Kind != CreateENI || a.ENIs != 2 || a.Count != 4 {
		t.Errorf("plan %+v, want CreateENI × 2 of 4 prefixes", a)
	}
}

// An ENI growth passes over (EC2 answered an assign NotFound: gone behind
// ipamd's back, see pkg/ipamd/goneeni.go) is no room for waiting ADDs: they
// get an ENI attached beside the assign rather than waiting for the
// reconcile that drops it. Before, its free slots made MoreENIs answer 0.
func TestMoreENIsPassOverAssignSkippedENI(t *testing.T) {
	p := m5large(Params{WarmENI: 1, Pending: 20})
	s := newSim(t, p, 0)
	full := s.cidrs(9, false)
	for i := range full {
		full[i].Assigned = 1
	}
	gone := s.cidrs(2, false)
	for i := range gone {
		gone[i].Assigned = 1
	}
	pool := Pool{ENIs: []ENI{{ID: "eni-0", Primary: true, CIDRs: full}, {ID: "eni-1", CIDRs: gone}}}
	if got := MoreENIs(pool, p, 0, 9, 0); got != 0 {
		t.Fatalf("MoreENIs with eni-1 taking assigns = %d, want 0 (it has room)", got)
	}
	p.AssignSkipped = map[string]bool{"eni-1": true}
	if got := MoreENIs(pool, p, 0, 9, 0); got != 1 {
		t.Errorf("MoreENIs with eni-1 passed over = %d, want 1 (the one ENI slot left)", got)
	}
}
