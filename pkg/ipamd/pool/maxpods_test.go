package pool

import (
	"strings"
	"testing"
)

// pdChurn is an m5.large under prefix delegation (3 ENIs × 9 prefixes),
// WARM_PREFIX_TARGET=1 and kubelet's max pods 110.
func pdChurn() Params {
	return m5large(Params{PrefixDelegation: true, WarmPrefix: 1, MaxPods: 110})
}

// churn deletes one pod at a time (its address cooling, never expiring
// here) and asks for a new one, n times, checking after each that the new
// pod got an address without any cooldown ending.
func (s *sim) churn(n int) {
	s.t.Helper()
	for i := range n {
		s.remove(1, true)
		s.converge()
		if waiting := s.pods - s.placed(); waiting > 0 || s.starved != "" {
			s.t.Fatalf("churn pair %d: %d pods wait, starved %q; pool %+v", i, waiting, s.starved, s.pool.Stats(s.p.PrefixDelegation))
		}
	}
}

// TestCoolingDoesNotCountAgainstMaxPods: max pods limits pods, so a pool
// whose addresses are mostly cooling keeps growing for new pods (it
// stopped at 110 held addresses, then every ADD waited for a cooldown),
// while the addresses held for pods (assigned or available) stay within
// max pods rounded up to a prefix. Once the cooldowns end the releases
// bring the pool back to its target.
func TestCoolingDoesNotCountAgainstMaxPods(t *testing.T) {
	s := newSim(t, pdChurn(), 0)
	s.pods = 40
	s.converge()
	s.churn(300) // 300 cooling: far beyond max pods, within the ENIs' 432
	st := s.pool.Stats(true)
	if st.Cooling != 300 || st.Assigned != 40 {
		t.Fatalf("after churn: %+v, want 40 assigned and 300 cooling", st)
	}
	if held := st.Total - st.Cooling; held > 112 {
		t.Errorf("after churn the pool holds %d addresses for pods (%+v), beyond max pods 110 in whole prefixes", held, st)
	}
	if st.Total <= s.p.MaxPods {
		t.Errorf("after churn: %+v: the pool never grew past max pods, so the test proves nothing", st)
	}
	s.cool()
	s.converge()
	// Back at the target: one free prefix beside those holding the 40
	// pods, and no ENI but the primary without a pod.
	st = s.pool.Stats(true)
	if st.FreePrefixes != 1 || st.Assigned != 40 || st.TotalPrefixes > 4+1 {
		t.Errorf("after the cooldowns: %+v, want 40 pods in at most 4 prefixes and one free prefix", st)
	}
	for _, e := range s.pool.ENIs {
		if !e.Primary && eniUsed(e) == 0 {
			t.Errorf("after the cooldowns: ENI %s holds no pod and was not freed", e.ID)
		}
	}
}

// TestCoolingPoolStillStopsAtMaxPods: the cap still binds on addresses
// held for pods. With 110 pods on 7 prefixes (2 addresses free) and 16
// more cooling, ADDs beyond max pods get nothing new and the plan names
// max pods, the cooling addresses included.
func TestCoolingPoolStillStopsAtMaxPods(t *testing.T) {
	p := pdChurn()
	s := newSim(t, p, 0)
	s.pool.ENIs[0].CIDRs = s.cidrs(8, true)
	for i := range 7 {
		s.pool.ENIs[0].CIDRs[i].Assigned = IPsPerPrefix
	}
	s.pool.ENIs[0].CIDRs[6].Assigned = 14
	s.pool.ENIs[0].CIDRs[7].Cooling = IPsPerPrefix
	p.Pending = 5
	a := Plan(s.pool, p)
	if a.Kind != None || !a.Starved || !strings.Contains(a.Reason, "max pods reached") || !strings.Contains(a.Reason, "16 more are cooling") {
		t.Errorf("plan %+v, want starved naming max pods and the cooling addresses", a)
	}
	if l, ok := AtHardLimit(s.pool, p); !ok || !l.MaxPods || l.Cooling != 16 {
		t.Errorf("AtHardLimit = %+v, %v; want the max-pods limit with 16 cooling", l, ok)
	}
	// One pod deleted: its address cools, so 109 addresses are held for
	// pods and the pool may grow again, by a single prefix.
	s.pool.ENIs[0].CIDRs[6].Assigned, s.pool.ENIs[0].CIDRs[6].Cooling = 11, 3
	if l, ok := AtHardLimit(s.pool, p); ok {
		t.Errorf("109 addresses held for pods of 110: at the limit %+v", l)
	}
	p.Pending = 50
	if a := Plan(s.pool, p); a.Kind != AssignPrefixes || a.Count != 1 {
		t.Errorf("plan %+v, want one prefix: room for one more pod", a)
	}
}

// TestBurstENIsNeverPassMaxPodsUnderPD: ENIs attached together for a
// burst share the prefixes max pods leaves room for; asking each for the
// same rounded-up count held up to (ENIs − 1) prefixes more (t3.medium
// under custom networking: 2 ENIs × 4 = 128 addresses for max pods 110,
// where 7 prefixes = 112 hold them).
func TestBurstENIsNeverPassMaxPodsUnderPD(t *testing.T) {
	p := m5large(Params{PrefixDelegation: true, WarmPrefix: 1, CustomNetworking: true, MaxPods: 110})
	p.IPv4PerENI = 6
	s := newSim(t, p, 0)
	s.pods = 200
	s.converge()
	if got := s.pool.Stats(true).Total; got > 112 {
		t.Errorf("the burst left %d addresses on the node (%+v), beyond max pods 110 in whole prefixes (112)", got, s.counts())
	}
	if got := s.placed(); got < 110 {
		t.Errorf("%d pods placed, want max pods 110", got)
	}
	for _, tc := range []struct {
		maxPods, want int
	}{{110, 7}, {90, 6}, {1000, 10}} {
		p.MaxPods, p.Pending = tc.maxPods, 1000
		a := Plan(Pool{ENIs: []ENI{{ID: "eni-0", Primary: true}}}, p)
		sum := 0
		for _, n := range a.PerENI() {
			sum += n
		}
		if a.Kind != CreateENI || a.ENIs != 2 || sum != tc.want {
			t.Errorf("max pods %d: plan %+v asks %v, want 2 ENIs with %d prefixes together", tc.maxPods, a, a.PerENI(), tc.want)
		}
	}
}

// TestWaitersGetOnePrefixAssign: under WARM_PREFIX_TARGET, ADDs waiting on
// an ENI with free slots get one assign for all of them and the warm
// prefix, bounded by the ENI's free slots and by max pods; then the pool is
// at target with nothing more to assign.
func TestWaitersGetOnePrefixAssign(t *testing.T) {
	for _, tc := range []struct {
		name           string
		waiting        int
		maxPods        int
		want, assigned int // prefixes the first assign asks for, assigns in all
	}{
		{"20 waiting: 2 for them and the warm one", 20, 110, 3, 1},
		{"33 waiting", 33, 110, 4, 1},
		{"slots bound it", 200, 1000, 8, 1},
		{"max pods bounds it", 100, 50, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSim(t, pdChurn(), 0)
			s.p.MaxPods = tc.maxPods
			s.pool.ENIs[0].CIDRs = s.cidrs(1, true)
			s.pool.ENIs[0].CIDRs[0].Assigned = IPsPerPrefix
			s.pods = IPsPerPrefix + tc.waiting
			p := s.p
			p.Pending = tc.waiting
			if a := Plan(s.pool, p); a.Kind != AssignPrefixes || a.Count != tc.want {
				t.Fatalf("plan %+v, want %d prefixes at once", a, tc.want)
			}
			before := len(s.pool.ENIs[0].CIDRs)
			assigns := 0
			for range 10 {
				p := s.p
				p.Pending = s.place()
				a := Plan(s.pool, p)
				if a.Kind != AssignPrefixes {
					break
				}
				assigns++
				s.apply(a)
			}
			if assigns != tc.assigned {
				t.Errorf("%d assigns (the ENI went from %d to %d prefixes), want %d", assigns, before, len(s.pool.ENIs[0].CIDRs), tc.assigned)
			}
		})
	}
}
