// Package pool is ipamd's pure warm-pool planner: given one network card's
// pool (ENIs, their CIDRs and how many addresses in each are assigned or
// cooling), the warm targets and the instance limits, Plan returns the ONE
// next action that moves the pool toward its targets. It performs no I/O;
// the engine in package ipamd executes the action and plans again.
//
// The arithmetic is upstream's (docs/compatibility.md, "Warm-pool
// arithmetic", which lists every deliberate difference); the main one:
// addresses in their IP_COOLDOWN_PERIOD do not count as available (upstream
// #2896), so a pool full of cooling addresses asks for more, and a CIDR
// holding a cooling address is never released; nor do they count against
// max pods (maxpods.go), which limits pods, not the cooling set.
package pool

import (
	"net/netip"
	"strconv"
	"time"
)

// IPsPerPrefix is the number of addresses in an IPv4 /28 prefix.
const IPsPerPrefix = 16

// CIDR is one secondary /32 or delegated /28 on an ENI.
type CIDR struct {
	Prefix   netip.Prefix
	Assigned int // addresses held by pods
	Cooling  int // released addresses still in their cooldown
}

// IsPrefix reports whether the CIDR is a delegated prefix rather than a
// single secondary address.
func (c CIDR) IsPrefix() bool { return c.Prefix.Bits() < c.Prefix.Addr().BitLen() }

// Size is the number of pod addresses in the CIDR.
func (c CIDR) Size() int {
	host := c.Prefix.Addr().BitLen() - c.Prefix.Bits()
	if host > 30 {
		host = 30
	}
	return 1 << host
}

// Unused reports whether no address of the CIDR is assigned or cooling.
func (c CIDR) Unused() bool { return c.Assigned == 0 && c.Cooling == 0 }

// ENI is one managed ENI of the card.
type ENI struct {
	ID           string
	DeviceNumber int
	Primary      bool
	Trunk        bool
	EFA          bool
	Excluded     bool // subnet excluded from pod IPs (kubernetes.io/role/cni=0)
	CreatedAt    time.Time
	CIDRs        []CIDR
}

// Pool is one network card's managed ENIs, ordered by device number.
type Pool struct {
	Card      int
	ENIs      []ENI
	Unmanaged int // unmanaged ENIs attached on this card: they use up ENI slots
}

// Params are the targets, limits and the engine's permissions for one plan.
type Params struct {
	WarmENI, WarmIP, MinimumIP, WarmPrefix int
	PrefixDelegation                       bool // effective (false on non-Nitro instances)

	MaxENIs    int // ENIs on this card: min(instance limit, MAX_ENI)
	IPv4PerENI int // instance IPv4 addresses per ENI, the primary address included
	MaxPods    int // no growth once this many addresses are held for pods, cooling ones not counted (0: no cap)

	// Pending is the number of AddNetwork calls waiting for an address. It
	// adds to the shortfall, so a pod never waits on a pool that its
	// targets call "full" (e.g. MINIMUM_IP_TARGET=N with N pods running).
	Pending int
	// Trying is the number of AddNetwork calls woken to take an address
	// and not yet counted in the pool (nor in Pending): the pool never
	// shrinks under them, or a burst's new ENI is freed before its pods
	// take its addresses.
	Trying int
	// CoolingSoon is how many cooling addresses end their cooldown before
	// a new ENI could bring addresses: waiting ADDs they serve need no ENI.
	CoolingSoon int

	CustomNetworking bool // the primary ENI gets no new addresses
	ReserveTrunk     bool // keep one ENI slot for the trunk ENI (SGPP, card 0, no trunk yet)

	CanAllocate  bool // provisioning on, not terminating, node schedulable, not in insufficient-address cooldown
	CanRelease   bool // CanAllocate's conditions and ≥ 30 s since the last release
	CanFreeENI   bool // not terminating, node schedulable, no ENI freed yet this cycle
	MinENIAge    time.Duration
	Now          time.Time
	CooldownNote string // why CanAllocate is false, for the reason of a starved pool
	// AssignPaused and CreateENIPaused, when set, say why the engine holds
	// back that kind of growth for now (a backoff after it failed): the
	// planner plans no such action, and the other kind goes on.
	AssignPaused, CreateENIPaused string
	// AssignSkipped are ENIs growth passes over for now: EC2 answered an
	// assign there NotFound (deleted behind ipamd's back) and no reconcile
	// has dropped them yet. Assigns on the other ENIs go on.
	AssignSkipped map[string]bool
}

// Kind names an action.
type Kind int

const (
	None Kind = iota
	AssignIPs
	AssignPrefixes
	CreateENI
	ReleaseCIDRs
	FreeENI
)

func (k Kind) String() string {
	return [...]string{"none", "assign-ips", "assign-prefixes", "create-eni", "release-cidrs", "free-eni"}[k]
}

// Action is the one thing the engine should do next.
type Action struct {
	Kind  Kind
	ENI   string // AssignIPs, AssignPrefixes, ReleaseCIDRs, FreeENI
	Count int    // addresses (AssignIPs, CreateENI without Prefixes) or prefixes
	// ENIs is how many ENIs CreateENI attaches at once (1 unless waiting
	// ADDs need more than one ENI holds); Count is then per ENI, unless
	// Total (0: ENIs × Count) spreads fewer over them: PerENI.
	ENIs     int
	Total    int
	Prefixes bool           // CreateENI: Count is a number of /28 prefixes
	CIDRs    []netip.Prefix // ReleaseCIDRs
	// Starved is set on None when the pool is below its target but cannot
	// grow; Reason then names why (ENI limit, max pods, cooldown…).
	Starved bool
	Reason  string
}

// PerENI is what each ENI of a CreateENI asks EC2 for, addresses or
// prefixes.
func (a Action) PerENI() []int {
	k := max(a.ENIs, 1)
	if a.Total > 0 {
		return splitCount(a.Total, k, a.Count)
	}
	out := make([]int, k)
	for i := range out {
		out[i] = a.Count
	}
	return out
}

// Stats summarise a card's pool in the active mode.
type Stats struct {
	Total         int // addresses in active-mode CIDRs of non-excluded ENIs
	Assigned      int
	Cooling       int
	Available     int // Total − Assigned − Cooling
	FreePrefixes  int // prefixes with nothing assigned or cooling (excluded ENIs not counted)
	TotalPrefixes int // prefixes on non-excluded ENIs
	ENIs          int // managed ENIs (excluded included)
	Excluded      int
	HasTrunk      bool
}

// Stats computes the pool's counters; pd selects the active mode.
func (p Pool) Stats(pd bool) Stats {
	var s Stats
	for _, e := range p.ENIs {
		s.ENIs++
		if e.Excluded {
			s.Excluded++
		}
		if e.Trunk {
			s.HasTrunk = true
		}
		for _, c := range e.CIDRs {
			if c.IsPrefix() && !e.Excluded {
				s.TotalPrefixes++
				if c.Unused() {
					s.FreePrefixes++
				}
			}
			if e.Excluded || c.IsPrefix() != pd {
				continue
			}
			s.Total += c.Size()
			s.Assigned += c.Assigned
			s.Cooling += c.Cooling
		}
	}
	s.Available = s.Total - s.Assigned - s.Cooling
	return s
}

// MaxTarget bounds each warm target in the planner's arithmetic. No
// network card holds this many addresses (or ENIs, or prefixes), so a
// larger target asks for exactly the same thing, "all the node can hold";
// without the bound a target near math.MaxInt (a value the environment
// variable parses to) wraps around in unit × target and target + 16 and
// reads as "nothing wanted", or starves waiting ADDs.
const MaxTarget = 1 << 20

// bounded returns p with every warm target at most MaxTarget.
func (p Params) bounded() Params {
	p.WarmENI, p.WarmIP = min(p.WarmENI, MaxTarget), min(p.WarmIP, MaxTarget)
	p.MinimumIP, p.WarmPrefix = min(p.MinimumIP, MaxTarget), min(p.WarmPrefix, MaxTarget)
	return p
}

func (p Params) targetsDefined(card int) bool {
	return card > 0 || p.WarmIP > 0 || p.MinimumIP > 0
}

// effective targets: cards > 0 always keep one warm and one minimum address.
func (p Params) ipTargets(card int) (warm, minimum int) {
	if card > 0 {
		return 1, 1
	}
	return p.WarmIP, p.MinimumIP
}

// maxIPsPerENI is the secondary addresses (or prefixes) one ENI can carry.
func (p Params) slotsPerENI() int { return max(p.IPv4PerENI-1, 0) }

// Shortfall returns (short, over) in addresses, or in prefixes when pd,
// following upstream's target-state arithmetic with cooling excluded.
func shortOver(s Stats, p Params, card int) (short, over int) {
	warm, minimum := p.ipTargets(card)
	short = max(warm-s.Available, 0)
	short = max(short, minimum-s.Total)
	over = max(s.Available-warm, 0)
	over = max(min(over, s.Total-minimum), 0)
	if !p.PrefixDelegation {
		return short, over
	}
	shortPfx := ceilDiv(short, IPsPerPrefix)
	needW := ceilDiv(s.Assigned+s.Cooling+warm, IPsPerPrefix)
	needM := ceilDiv(minimum, IPsPerPrefix)
	overPfx := max(min(s.FreePrefixes, s.TotalPrefixes-needW), 0)
	overPfx = max(min(overPfx, s.TotalPrefixes-needM), 0)
	return shortPfx, overPfx
}

func ceilDiv(a, b int) int {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}

// TooLow reports whether the card needs more addresses and, if so, how many
// addresses (or prefixes in PD mode) the targets ask for.
func TooLow(pool Pool, p Params) (low bool, want int) {
	p = p.bounded()
	s := pool.Stats(p.PrefixDelegation)
	room := p.roomUnits(s)
	if room <= 0 {
		return false, 0
	}
	// ADDs beyond max pods get nothing new: growing for them would hold
	// addresses (whole prefixes) the node may never use.
	pending := min(max(p.Pending-s.Available, 0), p.podRoom(s))
	low, want = tooLow(pool, p, s, pending)
	return low, min(want, room)
}

// tooLow is TooLow before the max-pods room bounds what it asks for.
func tooLow(pool Pool, p Params, s Stats, pending int) (bool, int) {
	if p.targetsDefined(pool.Card) {
		short, _ := shortOver(s, p, pool.Card)
		if pending > 0 {
			// Enough for the waiting ADDs and, once they took theirs, the
			// warm target still met: one assign instead of two.
			warm, _ := p.ipTargets(pool.Card)
			need := warm + pending
			if p.PrefixDelegation {
				need = ceilDiv(need, IPsPerPrefix)
			}
			short = max(short, need)
		}
		return short > 0, short
	}
	t, unit := p.WarmENI, p.slotsPerENI()
	if p.PrefixDelegation {
		t, unit = p.WarmPrefix, IPsPerPrefix
	}
	low := s.Available < unit*t || (t == 0 && s.Available == 0) || pending > 0
	if !low {
		return false, 0
	}
	if p.PrefixDelegation {
		// The waiting ADDs fill the available addresses, then new
		// prefixes; WARM_PREFIX_TARGET whole prefixes stay free after
		// them. One assign for all of it, not one for the waiters and
		// another for the warm prefix they used up.
		warm := max(p.WarmPrefix-s.FreePrefixes, 0)
		if pending > 0 {
			warm = p.WarmPrefix
		}
		return true, max(1, warm+ceilDiv(pending, IPsPerPrefix))
	}
	return true, p.slotsPerENI()
}

// TooHigh returns how many CIDRs (addresses or prefixes) exceed the targets.
func TooHigh(pool Pool, p Params) int {
	p = p.bounded()
	s := pool.Stats(p.PrefixDelegation)
	if p.targetsDefined(pool.Card) {
		_, over := shortOver(s, p, pool.Card)
		return max(over, p.aboveMaxPods(s))
	}
	if p.PrefixDelegation {
		return max(s.FreePrefixes-p.WarmPrefix, p.aboveMaxPods(s), 0)
	}
	// Plain WARM_ENI_TARGET never releases single addresses, except those
	// beyond max pods that churn added (maxpods.go).
	return p.aboveMaxPods(s)
}

// Plan returns the next action for the card.
func Plan(pool Pool, p Params) Action {
	p = p.bounded()
	s := pool.Stats(p.PrefixDelegation)
	if p.atMaxPods(s) && p.Pending > s.Available {
		return Action{Starved: true, Reason: maxPodsReason(p, s)}
	}
	if low, want := TooLow(pool, p); low {
		if !p.CanAllocate {
			return Action{Starved: true, Reason: "pool below target but allocation is paused: " + p.CooldownNote}
		}
		if a, ok := planGrow(pool, p, s, want); ok {
			if a.Kind == CreateENI && coolingServesDemand(pool, p) {
				return Action{Reason: "waiting ADDs get addresses whose cooldown ends before a new ENI could attach"}
			}
			return a
		}
		// No room to grow: CIDRs pods may not use (prefixes left after a
		// fallback to /32s, an excluded ENI's) hold the slots. They never
		// serve a waiting pod, so releasing them is safe even now.
		if p.CanRelease {
			if a, ok := planCleanup(pool, p); ok {
				return a
			}
		}
		return Action{Starved: true, Reason: starvedReason(pool, p, s)}
	}
	if p.Pending > 0 || p.Trying > 0 {
		// Pods are waiting for addresses about to be taken: never shrink now.
		return Action{Reason: "pods are waiting for addresses"}
	}
	// Freeing a whole empty ENI gives back all its addresses in one step,
	// so it comes before releasing single CIDRs (upstream releases first).
	if p.CanFreeENI && shouldRemoveExtraENIs(pool, p, s) {
		if id, ok := deletableENI(pool, p); ok {
			return Action{Kind: FreeENI, ENI: id, Reason: "ENI holds no pod and is not needed by the warm targets"}
		}
	}
	if over := TooHigh(pool, p); over > 0 && p.CanRelease {
		if a, ok := planRelease(pool, p, over); ok {
			return a
		}
	}
	if p.CanRelease {
		if a, ok := planCleanup(pool, p); ok {
			return a
		}
	}
	// Consolidating is an assign: it waits out the assign backoff too.
	if p.CanAllocate && p.CanFreeENI && p.AssignPaused == "" && (p.targetsDefined(pool.Card) || p.PrefixDelegation) {
		if a, ok := planConsolidate(pool, p); ok {
			return a
		}
	}
	return Action{Reason: "pool at target"}
}

// planConsolidate handles a pool at target whose warm addresses sit on an
// otherwise empty secondary ENI: it moves the warm capacity to an ENI that
// stays (one assign), after which the empty ENI is deletable and freed, so
// the node does not keep an ENI attached only for a few warm addresses.
func planConsolidate(pool Pool, p Params) (Action, bool) {
	warm, minimum := p.ipTargets(pool.Card)
	unit := 1
	if p.PrefixDelegation {
		warm = ceilDiv(warm, IPsPerPrefix) * IPsPerPrefix
		minimum = ceilDiv(minimum, IPsPerPrefix) * IPsPerPrefix
		unit = IPsPerPrefix
	}
	for i := len(pool.ENIs) - 1; i >= 0; i-- {
		e := pool.ENIs[i]
		if e.Primary || e.Trunk || e.EFA || e.Excluded || eniUsed(e) > 0 {
			continue
		}
		if !e.CreatedAt.IsZero() && p.Now.Sub(e.CreatedAt) < p.MinENIAge {
			continue
		}
		rest := Pool{Card: pool.Card, Unmanaged: pool.Unmanaged}
		for j, o := range pool.ENIs {
			if j != i {
				rest.ENIs = append(rest.ENIs, o)
			}
		}
		rs := rest.Stats(p.PrefixDelegation)
		need := ceilDiv(max(warm-rs.Available, minimum-rs.Total, 0), unit)
		if p.PrefixDelegation && p.WarmPrefix > 0 {
			need = max(need, p.WarmPrefix-rs.FreePrefixes)
		}
		if need <= 0 {
			continue // deletable already, or blocked by something else
		}
		for _, o := range rest.ENIs {
			if o.Trunk || o.Excluded || (o.Primary && p.CustomNetworking) || p.AssignSkipped[o.ID] {
				continue
			}
			if p.slotsPerENI()-len(o.CIDRs) >= need {
				kind := AssignIPs
				if p.PrefixDelegation {
					kind = AssignPrefixes
				}
				return Action{Kind: kind, ENI: o.ID, Count: need,
					Reason: "moving warm capacity off empty ENI " + e.ID + " so it can be freed"}, true
			}
		}
	}
	return Action{}, false
}

func planGrow(pool Pool, p Params, s Stats, want int) (Action, bool) {
	slots := p.slotsPerENI()
	kind := AssignIPs
	if p.PrefixDelegation {
		kind = AssignPrefixes
	}
	for _, e := range pool.ENIs {
		if e.Trunk || e.Excluded || (e.Primary && p.CustomNetworking) || p.AssignSkipped[e.ID] {
			continue
		}
		free := slots - len(e.CIDRs)
		if free <= 0 {
			continue
		}
		if p.AssignPaused != "" {
			return Action{Starved: true, Reason: "pool below target but assigning is paused: " + p.AssignPaused}, true
		}
		return Action{Kind: kind, ENI: e.ID, Count: min(free, want),
			Reason: "pool below target"}, true
	}
	if !hasRoomForENI(pool, p, s) {
		return Action{}, false
	}
	if p.CreateENIPaused != "" {
		return Action{Starved: true, Reason: "every ENI is full and a new ENI is paused: " + p.CreateENIPaused}, true
	}
	a := Action{Kind: CreateENI, Count: min(want, slots), ENIs: 1, Prefixes: p.PrefixDelegation,
		Reason: "every ENI is full"}
	if k := enisForDemand(pool, p, s); k > 1 {
		// The waiting ADDs need several ENIs: attach them together, each
		// full, instead of one EC2 round trip after another.
		a.ENIs, a.Count = k, slots
		if room := p.roomUnits(s); room < k*slots {
			// Max pods leaves room for less: the ENIs share it, so
			// together they pass it by less than one prefix.
			a.Count, a.Total = ceilDiv(room, k), room
		}
		a.Reason = "every ENI is full and " + strconv.Itoa(p.Pending) + " ADDs wait"
	}
	return a, true
}

func hasRoomForENI(pool Pool, p Params, s Stats) bool {
	reserve := 0
	if p.ReserveTrunk && pool.Card == 0 && !s.HasTrunk {
		reserve = 1
	}
	return s.ENIs-s.Excluded < p.MaxENIs-pool.Unmanaged-reserve-s.Excluded
}

func starvedReason(pool Pool, p Params, s Stats) string {
	used := s.ENIs + pool.Unmanaged
	msg := "ENI limit reached: " + strconv.Itoa(used) + " of " + strconv.Itoa(p.MaxENIs) + " ENIs attached"
	if pool.Unmanaged > 0 {
		msg += " (" + strconv.Itoa(pool.Unmanaged) + " unmanaged)"
	}
	if p.ReserveTrunk && !s.HasTrunk {
		msg += ", one slot reserved for the trunk ENI"
	}
	if p.CustomNetworking && !anyPodENI(pool) {
		return msg + "; under custom networking (AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true) the primary ENI serves no pod" +
			" and no slot is left for an ENI in the ENIConfig's subnet"
	}
	return msg + " and every ENI holds its maximum of " + strconv.Itoa(p.slotsPerENI()) + " secondary addresses or prefixes"
}

// anyPodENI reports whether a secondary ENI may serve pods (not the
// primary, a trunk or an excluded one).
func anyPodENI(pool Pool) bool {
	for _, e := range pool.ENIs {
		if !e.Primary && !e.Trunk && !e.Excluded {
			return true
		}
	}
	return false
}

// planRelease frees up to over unused active-mode CIDRs, emptiest ENI first
// (highest device number on ties) so whole ENIs become freeable.
func planRelease(pool Pool, p Params, over int) (Action, bool) {
	order := releaseOrder(pool)
	for _, e := range order {
		if e.Trunk || e.Excluded {
			continue
		}
		var cidrs []netip.Prefix
		for _, c := range e.CIDRs {
			if c.IsPrefix() == p.PrefixDelegation && c.Unused() {
				cidrs = append(cidrs, c.Prefix)
				if len(cidrs) == over {
					break
				}
			}
		}
		if len(cidrs) > 0 {
			return Action{Kind: ReleaseCIDRs, ENI: e.ID, CIDRs: cidrs, Reason: "pool above target"}, true
		}
	}
	return Action{}, false
}

func releaseOrder(pool Pool) []ENI {
	out := append([]ENI(nil), pool.ENIs...)
	used := func(e ENI) int {
		n := 0
		for _, c := range e.CIDRs {
			n += c.Assigned + c.Cooling
		}
		return n
	}
	// insertion sort: pools are a handful of ENIs
	for i := 1; i < len(out); i++ {
		for j := i; j > 0; j-- {
			a, b := out[j-1], out[j]
			if used(a) < used(b) || (used(a) == used(b) && a.DeviceNumber > b.DeviceNumber) {
				break
			}
			out[j-1], out[j] = b, a
		}
	}
	return out
}

// planCleanup releases unused CIDRs that pods may not use: those of the
// inactive mode (secondary IPs while PD is on, prefixes while it is off)
// and every unused CIDR of an excluded ENI.
func planCleanup(pool Pool, p Params) (Action, bool) {
	for _, e := range pool.ENIs {
		var cidrs []netip.Prefix
		for _, c := range e.CIDRs {
			if c.Unused() && (e.Excluded || c.IsPrefix() != p.PrefixDelegation) {
				cidrs = append(cidrs, c.Prefix)
			}
		}
		if len(cidrs) > 0 {
			why := "addresses of the inactive mode"
			if e.Excluded {
				why = "ENI's subnet is excluded from pod addresses"
			}
			return Action{Kind: ReleaseCIDRs, ENI: e.ID, CIDRs: cidrs, Reason: why}, true
		}
	}
	return Action{}, false
}

func shouldRemoveExtraENIs(pool Pool, p Params, s Stats) bool {
	if p.targetsDefined(pool.Card) || p.aboveMaxPods(s) > 0 {
		return true
	}
	t, maxIPs := p.WarmENI, p.slotsPerENI()
	if p.PrefixDelegation {
		t, maxIPs = p.WarmPrefix, p.slotsPerENI()*IPsPerPrefix
	}
	if s.Available >= (t+1)*maxIPs {
		return true
	}
	if p.PrefixDelegation {
		for _, e := range pool.ENIs {
			if !e.Primary && !e.Trunk && !e.EFA && eniUsed(e) == 0 {
				return true
			}
		}
	}
	return false
}

func eniUsed(e ENI) int {
	n := 0
	for _, c := range e.CIDRs {
		n += c.Assigned + c.Cooling
	}
	return n
}

// deletableENI applies upstream's deletable-ENI rule (docs/compatibility.md,
// "Warm-pool arithmetic"): the first non-primary, non-trunk, non-EFA ENI old
// enough, with no assigned or cooling address, whose removal keeps the warm
// and minimum targets met by the other ENIs. Highest device number first.
func deletableENI(pool Pool, p Params) (string, bool) {
	warm, minimum := p.ipTargets(pool.Card)
	if p.PrefixDelegation {
		warm = ceilDiv(warm, IPsPerPrefix) * IPsPerPrefix
		minimum = ceilDiv(minimum, IPsPerPrefix) * IPsPerPrefix
	}
	for i := len(pool.ENIs) - 1; i >= 0; i-- {
		e := pool.ENIs[i]
		if e.Primary || e.Trunk || e.EFA || eniUsed(e) > 0 {
			continue
		}
		if !e.CreatedAt.IsZero() && p.Now.Sub(e.CreatedAt) < p.MinENIAge {
			continue
		}
		rest := Pool{Card: pool.Card, Unmanaged: pool.Unmanaged}
		for j, o := range pool.ENIs {
			if j != i {
				rest.ENIs = append(rest.ENIs, o)
			}
		}
		rs := rest.Stats(p.PrefixDelegation)
		if p.MaxPods > 0 && rs.Total-rs.Cooling >= p.MaxPods {
			// The other ENIs hold max pods for pods: no target can grow
			// the pool back (TooLow), so the warm targets need not be met.
			return e.ID, true
		}
		if warm > 0 && rs.Available < warm {
			continue
		}
		if minimum > 0 && rs.Total < minimum {
			continue
		}
		if p.PrefixDelegation && p.WarmPrefix > 0 && rs.FreePrefixes < p.WarmPrefix {
			continue
		}
		// Never free an ENI whose absence would make the pool too low at
		// once: upstream flaps (attach, free, attach…) with WARM_ENI_TARGET=0.
		if low, _ := TooLow(rest, p); low {
			continue
		}
		return e.ID, true
	}
	return "", false
}
