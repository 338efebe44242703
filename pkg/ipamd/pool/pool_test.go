package pool

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// sim applies actions to a Pool the way the engine would, places pods
// densely (first ENI, first CIDR first) and checks that no action ever
// touches an address in use.
type sim struct {
	t       *testing.T
	pool    Pool
	p       Params
	next    uint32 // next address to hand out
	devices int
	pods    int // pods wanted
	starved string
}

func newSim(t *testing.T, p Params, unmanaged int) *sim {
	s := &sim{t: t, p: p, next: 10<<24 | 1<<16}
	s.pool = Pool{Unmanaged: unmanaged, ENIs: []ENI{{ID: "eni-0", Primary: true}}}
	return s
}

func (s *sim) addr(bits int) netip.Prefix {
	size := uint32(1) << (32 - bits)
	s.next = (s.next + size - 1) / size * size
	a := s.next
	s.next += size
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}), bits)
}

func (s *sim) cidrs(n int, prefixes bool) []CIDR {
	bits := 32
	if prefixes {
		bits = 28
	}
	out := make([]CIDR, n)
	for i := range out {
		out[i] = CIDR{Prefix: s.addr(bits)}
	}
	return out
}

func (s *sim) placed() int {
	n := 0
	for _, e := range s.pool.ENIs {
		for _, c := range e.CIDRs {
			n += c.Assigned
		}
	}
	return n
}

// place assigns waiting pods densely; it returns how many are still waiting.
func (s *sim) place() int {
	want := s.pods - s.placed()
	for i := range s.pool.ENIs {
		e := &s.pool.ENIs[i]
		if e.Excluded || e.Trunk {
			continue
		}
		for j := range e.CIDRs {
			c := &e.CIDRs[j]
			if c.IsPrefix() != s.p.PrefixDelegation {
				continue
			}
			for want > 0 && c.Assigned+c.Cooling < c.Size() {
				c.Assigned++
				want--
			}
		}
	}
	return want
}

// remove deletes pods from the last CIDRs first; cooling keeps their
// addresses unusable until cool() runs.
func (s *sim) remove(n int, cooling bool) {
	for i := len(s.pool.ENIs) - 1; i >= 0 && n > 0; i-- {
		e := &s.pool.ENIs[i]
		for j := len(e.CIDRs) - 1; j >= 0 && n > 0; j-- {
			c := &e.CIDRs[j]
			for c.Assigned > 0 && n > 0 {
				c.Assigned--
				if cooling {
					c.Cooling++
				}
				n--
			}
		}
	}
}

func (s *sim) cool() {
	for i := range s.pool.ENIs {
		for j := range s.pool.ENIs[i].CIDRs {
			s.pool.ENIs[i].CIDRs[j].Cooling = 0
		}
	}
}

func (s *sim) apply(a Action) {
	s.t.Helper()
	find := func(id string) int {
		for i, e := range s.pool.ENIs {
			if e.ID == id {
				return i
			}
		}
		s.t.Fatalf("action %+v names unknown ENI", a)
		return -1
	}
	switch a.Kind {
	case AssignIPs, AssignPrefixes:
		if a.Count < 1 {
			s.t.Fatalf("action %+v assigns nothing", a)
		}
		i := find(a.ENI)
		s.pool.ENIs[i].CIDRs = append(s.pool.ENIs[i].CIDRs, s.cidrs(a.Count, a.Kind == AssignPrefixes)...)
		if len(s.pool.ENIs[i].CIDRs) > s.p.IPv4PerENI-1 {
			s.t.Fatalf("action %+v overfills the ENI", a)
		}
	case CreateENI:
		for _, n := range a.PerENI() {
			s.devices++
			s.pool.ENIs = append(s.pool.ENIs, ENI{ID: fmt.Sprintf("eni-%d", s.devices), DeviceNumber: s.devices,
				CIDRs: s.cidrs(n, a.Prefixes)})
		}
		if len(s.pool.ENIs)+s.pool.Unmanaged > s.p.MaxENIs {
			s.t.Fatalf("action %+v exceeds the ENI limit", a)
		}
	case ReleaseCIDRs:
		i := find(a.ENI)
		e := &s.pool.ENIs[i]
		for _, r := range a.CIDRs {
			k := -1
			for j, c := range e.CIDRs {
				if c.Prefix == r {
					k = j
				}
			}
			if k < 0 || !e.CIDRs[k].Unused() {
				s.t.Fatalf("action %+v releases a CIDR that is unknown or in use (%+v)", a, e.CIDRs)
			}
			e.CIDRs = append(e.CIDRs[:k], e.CIDRs[k+1:]...)
		}
	case FreeENI:
		i := find(a.ENI)
		if eniUsed(s.pool.ENIs[i]) > 0 || s.pool.ENIs[i].Primary {
			s.t.Fatalf("action %+v frees an ENI in use", a)
		}
		s.pool.ENIs = append(s.pool.ENIs[:i], s.pool.ENIs[i+1:]...)
	}
}

// converge plans and applies until the pool is at target, placing pods as
// addresses appear (the Pending path of AddNetwork).
func (s *sim) converge() {
	s.t.Helper()
	s.starved = ""
	for range 100 {
		p := s.p
		p.Pending = s.place()
		a := Plan(s.pool, p)
		if a.Kind == None {
			if a.Starved {
				s.starved = a.Reason
			}
			return
		}
		s.apply(a)
	}
	s.t.Fatalf("no convergence after 100 actions: %+v", s.pool)
}

type counts struct{ ENIs, IPs, Prefixes, Placed int }

func (s *sim) counts() counts {
	var c counts
	for _, e := range s.pool.ENIs {
		c.ENIs++
		for _, x := range e.CIDRs {
			if x.IsPrefix() {
				c.Prefixes++
			} else {
				c.IPs++
			}
		}
	}
	c.Placed = s.placed()
	return c
}

type step struct {
	name    string
	pods    int  // pods wanted after this step
	cooling bool // removed pods' addresses stay in cooldown
	cool    bool // every cooldown has expired before planning
	want    counts
	starved string // substring of the starvation reason, "" = not starved
}

// Instance limits: m5.large 3 ENIs × 10 IPv4 (29 max pods); t3.medium
// 3 × 6 (17 max pods).
func m5large(p Params) Params {
	p.IPv4PerENI = 10
	if p.MaxENIs == 0 {
		p.MaxENIs = 3
	}
	if p.MaxPods == 0 {
		p.MaxPods = 29
		if p.PrefixDelegation {
			p.MaxPods = 110
		}
	}
	p.CanAllocate, p.CanRelease, p.CanFreeENI = true, true, true
	return p
}

func TestScenarios(t *testing.T) {
	for _, sc := range []struct {
		name      string
		p         Params
		unmanaged int
		steps     []step
	}{
		{"m5.large/WARM_ENI_TARGET=1", m5large(Params{WarmENI: 1}), 0, []step{
			{name: "idle node fills the primary ENI", pods: 0, want: counts{1, 9, 0, 0}},
			{name: "5 pods: fewer than one ENI free, attach a second", pods: 5, want: counts{2, 18, 0, 5}},
			{name: "12 pods: third ENI", pods: 12, want: counts{3, 27, 0, 12}},
			{name: "27 pods: ENI limit", pods: 27, want: counts{3, 27, 0, 27}, starved: "ENI limit reached: 3 of 3"},
			{name: "all pods gone, still cooling: nothing freed", pods: 0, cooling: true, want: counts{3, 27, 0, 0}, starved: "ENI limit"},
			{name: "cooldown over: ENIs beyond one warm ENI freed", pods: 0, cool: true, want: counts{1, 9, 0, 0}},
		}},
		{"m5.large/WARM_ENI_TARGET=2", m5large(Params{WarmENI: 2}), 0, []step{
			{name: "idle node keeps two ENIs", pods: 0, want: counts{2, 18, 0, 0}},
			{name: "1 pod: a third ENI", pods: 1, want: counts{3, 27, 0, 1}},
		}},
		{"m5.large/WARM_ENI_TARGET=0", m5large(Params{WarmENI: 0}), 0, []step{
			{name: "idle node still gets addresses when none is free", pods: 0, want: counts{1, 9, 0, 0}},
			{name: "9 pods fill the primary, a second ENI follows", pods: 9, want: counts{2, 18, 0, 9}},
		}},
		{"m5.large/WARM_IP_TARGET=5", m5large(Params{WarmENI: 1, WarmIP: 5}), 0, []step{
			{name: "idle node: five addresses", pods: 0, want: counts{1, 5, 0, 0}},
			{name: "4 pods: primary topped up to its 9", pods: 4, want: counts{1, 9, 0, 4}},
			{name: "8 pods: second ENI with only the shortfall", pods: 8, want: counts{2, 13, 0, 8}},
			{name: "2 pods: excess released and the empty ENI freed", pods: 2, cool: true, want: counts{1, 7, 0, 2}},
		}},
		{"m5.large/WARM_IP_TARGET=5,MINIMUM_IP_TARGET=10", m5large(Params{WarmENI: 1, WarmIP: 5, MinimumIP: 10}), 0, []step{
			{name: "idle node: minimum of ten over two ENIs", pods: 0, want: counts{2, 10, 0, 0}},
			{name: "7 pods: five warm", pods: 7, want: counts{2, 12, 0, 7}},
			{name: "0 pods: back to the minimum, second ENI kept for it", pods: 0, cool: true, want: counts{2, 10, 0, 0}},
		}},
		{"m5.large/MINIMUM_IP_TARGET=20", m5large(Params{WarmENI: 1, MinimumIP: 20}), 0, []step{
			{name: "idle node: twenty addresses", pods: 0, want: counts{3, 20, 0, 0}},
			{name: "22 pods: pending pods grow past the minimum", pods: 22, want: counts{3, 22, 0, 22}},
		}},
		{"m5.large/WARM_IP_TARGET=2,cooling counts as used (#2896)", m5large(Params{WarmENI: 1, WarmIP: 2}), 0, []step{
			{name: "3 pods", pods: 3, want: counts{1, 5, 0, 3}},
			{name: "3 pods deleted, cooling: two more warm, cooling never released", pods: 0, cooling: true, want: counts{1, 5, 0, 0}},
			{name: "cooldown over: excess released", pods: 0, cool: true, want: counts{1, 2, 0, 0}},
		}},
		{"m5.large/WARM_ENI_TARGET=1,MAX_ENI=1", m5large(Params{WarmENI: 1, MaxENIs: 1}), 0, []step{
			{name: "5 pods: one ENI only", pods: 5, want: counts{1, 9, 0, 5}, starved: "ENI limit reached: 1 of 1"},
		}},
		{"m5.large/WARM_ENI_TARGET=1,one unmanaged ENI", m5large(Params{WarmENI: 1}), 1, []step{
			{name: "12 pods: the unmanaged ENI uses a slot", pods: 12, want: counts{2, 18, 0, 12}, starved: "(1 unmanaged)"},
		}},
		{"m5.large/WARM_ENI_TARGET=1,ENABLE_POD_ENI trunk slot reserved", m5large(Params{WarmENI: 1, ReserveTrunk: true}), 0, []step{
			{name: "12 pods: one slot kept for the trunk", pods: 12, want: counts{2, 18, 0, 12}, starved: "reserved for the trunk"},
		}},
		{"m5.large/WARM_IP_TARGET=5,CUSTOM_NETWORK", m5large(Params{WarmENI: 1, WarmIP: 5, CustomNetworking: true}), 0, []step{
			{name: "idle node: addresses only on a secondary ENI", pods: 0, want: counts{2, 5, 0, 0}},
		}},
		{"t3.medium/WARM_ENI_TARGET=1,maxPods=10", func() Params {
			p := m5large(Params{WarmENI: 1, MaxPods: 10})
			p.IPv4PerENI = 6
			return p
		}(), 0, []step{
			{name: "9 pods: growth stops at max pods", pods: 9, want: counts{2, 10, 0, 9}},
		}},
		{"m5.large/PD,WARM_PREFIX_TARGET=1", m5large(Params{PrefixDelegation: true, WarmENI: 1, WarmPrefix: 1}), 0, []step{
			{name: "idle node: one prefix", pods: 0, want: counts{1, 0, 1, 0}},
			{name: "20 pods: a free prefix kept", pods: 20, want: counts{1, 0, 3, 20}},
			{name: "105 pods: growth stops at max pods 110", pods: 105, want: counts{1, 0, 7, 105}},
			{name: "0 pods: back to one free prefix", pods: 0, cool: true, want: counts{1, 0, 1, 0}},
		}},
		{"m5.large/PD,WARM_PREFIX_TARGET=2", m5large(Params{PrefixDelegation: true, WarmENI: 1, WarmPrefix: 2}), 0, []step{
			{name: "idle node: two prefixes", pods: 0, want: counts{1, 0, 2, 0}},
			{name: "1 pod: two whole prefixes free again", pods: 1, want: counts{1, 0, 3, 1}},
		}},
		{"m5.large/PD,WARM_IP_TARGET=5", m5large(Params{PrefixDelegation: true, WarmENI: 1, WarmIP: 5}), 0, []step{
			{name: "idle node: one prefix", pods: 0, want: counts{1, 0, 1, 0}},
			{name: "14 pods: a second prefix", pods: 14, want: counts{1, 0, 2, 14}},
			{name: "0 pods: one prefix released", pods: 0, cool: true, want: counts{1, 0, 1, 0}},
		}},
		{"m5.large/PD,WARM_IP_TARGET=5,MINIMUM_IP_TARGET=40", m5large(Params{PrefixDelegation: true, WarmENI: 1, WarmIP: 5, MinimumIP: 40}), 0, []step{
			{name: "idle node: three prefixes cover forty", pods: 0, want: counts{1, 0, 3, 0}},
			{name: "44 pods: a fourth", pods: 44, want: counts{1, 0, 4, 44}},
			{name: "0 pods: back to three", pods: 0, cool: true, want: counts{1, 0, 3, 0}},
		}},
		{"m5.large/PD,WARM_PREFIX_TARGET=1,maxPods=250,ENI full", m5large(Params{PrefixDelegation: true, WarmENI: 1, WarmPrefix: 1, MaxPods: 250}), 0, []step{
			{name: "140 pods: primary's 9 prefixes full, second ENI", pods: 140, want: counts{2, 0, 10, 140}},
			{name: "0 pods: second ENI freed", pods: 0, cool: true, want: counts{1, 0, 1, 0}},
		}},
	} {
		t.Run(sc.name, func(t *testing.T) {
			s := newSim(t, sc.p, sc.unmanaged)
			for _, st := range sc.steps {
				if st.pods < s.placed() {
					s.remove(s.placed()-st.pods, st.cooling)
				}
				if st.cool {
					s.cool()
				}
				s.pods = st.pods
				s.converge()
				if got := s.counts(); got != st.want {
					t.Errorf("%s: got %+v, want %+v", st.name, got, st.want)
				}
				switch {
				case st.starved == "" && s.starved != "":
					t.Errorf("%s: unexpectedly starved: %s", st.name, s.starved)
				case st.starved != "" && !strings.Contains(s.starved, st.starved):
					t.Errorf("%s: starved reason %q, want it to contain %q", st.name, s.starved, st.starved)
				}
			}
		})
	}
}

func TestPlanRespectsPermissions(t *testing.T) {
	p := m5large(Params{WarmIP: 5})
	p.CanAllocate, p.CooldownNote = false, "InsufficientFreeAddressesInSubnet cooldown"
	a := Plan(Pool{ENIs: []ENI{{ID: "eni-0", Primary: true}}}, p)
	if a.Kind != None || !a.Starved || !strings.Contains(a.Reason, "InsufficientFreeAddressesInSubnet") {
		t.Errorf("plan during cooldown: %+v", a)
	}
	// A pool far above target does nothing while releases are not allowed.
	p = m5large(Params{WarmIP: 1})
	p.CanRelease, p.CanFreeENI = false, false
	pool := Pool{ENIs: []ENI{{ID: "eni-0", Primary: true, CIDRs: []CIDR{
		{Prefix: netip.MustParsePrefix("10.0.0.5/32")}, {Prefix: netip.MustParsePrefix("10.0.0.6/32")}, {Prefix: netip.MustParsePrefix("10.0.0.7/32")}}}}}
	if a := Plan(pool, p); a.Kind != None {
		t.Errorf("plan without release permission: %+v", a)
	}
	p.CanRelease = true
	if a := Plan(pool, p); a.Kind != ReleaseCIDRs || len(a.CIDRs) != 2 {
		t.Errorf("plan with release permission: %+v", a)
	}
}

func TestPlanCleansInactiveModeAndExcluded(t *testing.T) {
	p := m5large(Params{PrefixDelegation: true, WarmPrefix: 1})
	pool := Pool{ENIs: []ENI{
		{ID: "eni-0", Primary: true, CIDRs: []CIDR{
			{Prefix: netip.MustParsePrefix("10.0.0.16/28")},
			{Prefix: netip.MustParsePrefix("10.0.0.5/32")},
			{Prefix: netip.MustParsePrefix("10.0.0.6/32"), Assigned: 1}}},
		{ID: "eni-1", DeviceNumber: 1, Excluded: true, CIDRs: []CIDR{
			{Prefix: netip.MustParsePrefix("10.0.1.16/28"), Assigned: 1},
			{Prefix: netip.MustParsePrefix("10.0.1.32/28")}}},
	}}
	a := Plan(pool, p)
	if a.Kind != ReleaseCIDRs || a.ENI != "eni-0" || len(a.CIDRs) != 1 || a.CIDRs[0] != netip.MustParsePrefix("10.0.0.5/32") {
		t.Fatalf("first cleanup: %+v", a)
	}
	pool.ENIs[0].CIDRs = append(pool.ENIs[0].CIDRs[:1], pool.ENIs[0].CIDRs[2:]...)
	a = Plan(pool, p)
	if a.Kind != ReleaseCIDRs || a.ENI != "eni-1" || len(a.CIDRs) != 1 || a.CIDRs[0] != netip.MustParsePrefix("10.0.1.32/28") {
		t.Fatalf("excluded cleanup: %+v", a)
	}
}

func TestCardAboveZeroKeepsOneWarm(t *testing.T) {
	p := m5large(Params{WarmENI: 3})
	a := Plan(Pool{Card: 1, ENIs: []ENI{{ID: "eni-9", Primary: false}}}, p)
	if a.Kind != AssignIPs || a.Count != 1 {
		t.Errorf("card 1: %+v", a)
	}
}

func TestPlanConsolidatesWarmAddressesOffAnEmptyENI(t *testing.T) {
	// m5.large, WARM_IP_TARGET=3: the three warm addresses sit on eni-1,
	// the primary is empty. Move them, then free eni-1.
	s := newSim(t, m5large(Params{WarmIP: 3}), 0)
	s.pool.ENIs = append(s.pool.ENIs, ENI{ID: "eni-1", DeviceNumber: 1, CIDRs: s.cidrs(3, false)})
	s.devices = 1
	a := Plan(s.pool, s.p)
	if a.Kind != AssignIPs || a.ENI != "eni-0" || a.Count != 3 {
		t.Fatalf("first action: %+v", a)
	}
	s.converge()
	if got := s.counts(); got != (counts{1, 3, 0, 0}) {
		t.Errorf("after consolidation: %+v", got)
	}
}

// TestPlannerInvariantsEveryCombination walks every combination of the
// targets of docs/compatibility.md, "Warm-pool arithmetic" (WARM_ENI_TARGET,
// WARM_IP_TARGET, MINIMUM_IP_TARGET, WARM_PREFIX_TARGET, prefix delegation)
// over pod counts on two instance types and checks, after the pool settles:
// it settles at all (no flapping); every pod that fits got an address,
// otherwise the planner says why; the pool is not below target unless it says
// why; and nothing more can be released.
func TestPlannerInvariantsEveryCombination(t *testing.T) {
	type inst struct {
		name          string
		maxENIs, ipv4 int
	}
	cases := 0
	for _, it := range []inst{{"m5.large", 3, 10}, {"t3.medium", 3, 6}} {
		for _, pd := range []bool{false, true} {
			for _, weni := range []int{0, 1, 2} {
				for _, wip := range []int{0, 1, 5, 16} {
					for _, mip := range []int{0, 10, 20} {
						for _, wpfx := range []int{0, 1, 2} {
							if pd && wip == 0 && mip == 0 && wpfx == 0 {
								continue // refused by config validation (prefix delegation needs a target above 0)
							}
							if !pd && wpfx > 0 {
								continue // WARM_PREFIX_TARGET means nothing without PD
							}
							name := fmt.Sprintf("%s/PD=%v,WARM_ENI_TARGET=%d,WARM_IP_TARGET=%d,MINIMUM_IP_TARGET=%d,WARM_PREFIX_TARGET=%d",
								it.name, pd, weni, wip, mip, wpfx)
							p := Params{WarmENI: weni, WarmIP: wip, MinimumIP: mip, WarmPrefix: wpfx, PrefixDelegation: pd,
								MaxENIs: it.maxENIs, IPv4PerENI: it.ipv4, MaxPods: 110,
								CanAllocate: true, CanRelease: true, CanFreeENI: true}
							s := newSim(t, p, 0)
							for _, pods := range []int{0, 1, 7, 15, 30, 60, 3, 0} {
								if pods < s.placed() {
									s.remove(s.placed()-pods, false)
								}
								s.pods = pods
								s.converge()
								cases++
								st := s.pool.Stats(pd)
								if s.placed() < pods && s.starved == "" {
									t.Fatalf("%s, %d pods: only %d placed and no reason given", name, pods, s.placed())
								}
								if low, _ := TooLow(s.pool, p); low && s.starved == "" {
									t.Fatalf("%s, %d pods: pool below target (%+v) with no reason", name, pods, st)
								}
								if over := TooHigh(s.pool, p); over > 0 {
									// Only cooling or in-use CIDRs may remain; there are none cooling here.
									if a, ok := planRelease(s.pool, p, over); ok {
										t.Fatalf("%s, %d pods: settled with %d releasable (%+v)", name, pods, over, a)
									}
								}
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d settled states checked", cases)
}

func TestPlanNamesMaxPods(t *testing.T) {
	p := m5large(Params{WarmENI: 1, MaxPods: 9})
	p.Pending = 1
	pool := Pool{ENIs: []ENI{{ID: "eni-0", Primary: true}}}
	s := newSim(t, p, 0)
	pool.ENIs[0].CIDRs = s.cidrs(9, false)
	for i := range pool.ENIs[0].CIDRs {
		pool.ENIs[0].CIDRs[i].Assigned = 1
	}
	a := Plan(pool, p)
	if a.Kind != None || !a.Starved || !strings.Contains(a.Reason, "max pods reached") {
		t.Errorf("plan at max pods with a pod waiting: %+v", a)
	}
}

// TestPlanReleasesUnusableCIDRsWhenStarved: after a fallback from prefixes
// to /32s, an ENI limit reached and pods waiting, the empty prefixes that
// hold the ENI slots are released so /32s can take their place.
func TestPlanReleasesUnusableCIDRsWhenStarved(t *testing.T) {
	s := newSim(t, Params{}, 0)
	prefixes := s.cidrs(3, true)
	s.pool.ENIs[0].CIDRs = prefixes
	p := Params{WarmENI: 1, MaxENIs: 1, IPv4PerENI: 4, Pending: 2, CanAllocate: true, CanRelease: true, CanFreeENI: true}
	a := Plan(s.pool, p)
	if a.Kind != ReleaseCIDRs || len(a.CIDRs) != 3 {
		t.Fatalf("plan %+v, want the 3 unused prefixes released", a)
	}
	s.pool.ENIs[0].CIDRs = nil
	if a := Plan(s.pool, p); a.Kind != AssignIPs {
		t.Errorf("then %+v, want /32s assigned", a)
	}
}

// TestAtHardLimit: a card is at its hard limit only when no ENI slot is
// free (unmanaged ENIs and the trunk reservation take slots) and every
// usable ENI holds its maximum of addresses, or at max pods; a backoff or
// a full subnet (CanAllocate false) is not a hard limit.
func TestAtHardLimit(t *testing.T) {
	full := func(s *sim, id string, n int) ENI {
		return ENI{ID: id, CIDRs: s.cidrs(n, false)}
	}
	p := m5large(Params{WarmENI: 1, MaxENIs: 1})
	s := newSim(t, p, 0)
	one := Pool{ENIs: []ENI{{ID: "eni-0", Primary: true, CIDRs: s.cidrs(9, false)}}}
	if l, ok := AtHardLimit(one, p); !ok || l.ENIs != 1 || l.Slots != 9 || l.Total != 9 {
		t.Errorf("one full ENI of one: %+v, %v; want the limit 1 × 9, 9 addresses", l, ok)
	}
	one.ENIs[0].CIDRs = one.ENIs[0].CIDRs[:8]
	if _, ok := AtHardLimit(one, p); ok {
		t.Error("an ENI with a free address slot is at the limit")
	}
	p.MaxENIs = 3
	two := Pool{Unmanaged: 1, ENIs: []ENI{{ID: "eni-0", Primary: true, CIDRs: s.cidrs(9, false)}, full(s, "eni-1", 9)}}
	if _, ok := AtHardLimit(two, p); !ok {
		t.Error("2 managed full ENIs + 1 unmanaged of 3 is not at the limit")
	}
	two.Unmanaged = 0
	if _, ok := AtHardLimit(two, p); ok {
		t.Error("a free ENI slot counts as a hard limit")
	}
	p.ReserveTrunk = true
	if _, ok := AtHardLimit(two, p); !ok {
		t.Error("the slot reserved for the trunk ENI is not counted")
	}
	p.CanAllocate = false
	p.ReserveTrunk = false
	if _, ok := AtHardLimit(two, p); ok {
		t.Error("CanAllocate=false (backoff, full subnet) made a hard limit")
	}
	p.MaxPods = 18
	if l, ok := AtHardLimit(two, p); !ok || !l.MaxPods {
		t.Errorf("18 addresses at max pods 18: %+v, %v", l, ok)
	}
}

// TestPlanGrowsPastAnENIAssignsSkip: an ENI whose assign answered NotFound
// (deleted behind ipamd's back) is passed over: growth assigns on the next
// ENI with room, or creates an ENI when no other has room. Assigns are not
// paused (that is AssignPaused, for failures on any ENI).
func TestPlanGrowsPastAnENIAssignsSkip(t *testing.T) {
	full := func(base string) []CIDR {
		out := make([]CIDR, 9)
		for i := range out {
			out[i] = CIDR{Prefix: netip.MustParsePrefix(fmt.Sprintf("%s.%d/32", base, i+10)), Assigned: 1}
		}
		return out
	}
	p := m5large(Params{WarmIP: 1})
	p.AssignSkipped = map[string]bool{"eni-1": true}
	pool := Pool{ENIs: []ENI{
		{ID: "eni-0", Primary: true, CIDRs: full("10.0.0")},
		{ID: "eni-1", DeviceNumber: 1, CIDRs: full("10.0.1")[:2]},
		{ID: "eni-2", DeviceNumber: 2, CIDRs: full("10.0.2")[:3]},
	}}
	if a := Plan(pool, p); a.Kind != AssignIPs || a.ENI != "eni-2" {
		t.Errorf("plan with eni-1 skipped and eni-2 with room: %+v, want an assign on eni-2", a)
	}
	pool.ENIs = pool.ENIs[:2]
	if a := Plan(pool, p); a.Kind != CreateENI {
		t.Errorf("plan with eni-1 skipped and no other ENI with room: %+v, want a new ENI", a)
	}
	p.AssignSkipped = nil
	if a := Plan(pool, p); a.Kind != AssignIPs || a.ENI != "eni-1" {
		t.Errorf("plan with nothing skipped: %+v, want an assign on eni-1", a)
	}
}
