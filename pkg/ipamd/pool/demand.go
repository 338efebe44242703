package pool

// Sizing for waiting ADDs: how many ENIs a burst needs, whether expiring
// cooldowns serve it instead, and whether the card is at its hard limit.

// coolingServesDemand reports whether the pool would not be low if the
// addresses ending their cooldown soon served as many waiting ADDs: the
// targets are met and only the waiting demand asks for an ENI. Cooling
// addresses are never handed out early; the ADDs wait for their expiry.
func coolingServesDemand(pool Pool, p Params) bool {
	if p.Pending == 0 || p.CoolingSoon == 0 {
		return false
	}
	q := p
	q.Pending = max(p.Pending-p.CoolingSoon, 0)
	low, _ := TooLow(pool, q)
	return !low
}

// enisForDemand is how many new ENIs the waiting ADDs need beyond the
// available addresses, at most the free ENI slots.
func enisForDemand(pool Pool, p Params, s Stats) int {
	perENI := p.slotsPerENI()
	if p.PrefixDelegation {
		perENI *= IPsPerPrefix
	}
	short := p.Pending - s.Available
	if perENI <= 0 || short <= perENI {
		return 1
	}
	reserve := 0
	if p.ReserveTrunk && pool.Card == 0 && !s.HasTrunk {
		reserve = 1
	}
	room := min(p.MaxENIs-pool.Unmanaged-reserve-s.ENIs,
		ceilDiv(p.podRoom(s), perENI)) // never beyond max pods
	return max(min(ceilDiv(short, perENI), room), 1)
}

// Limit describes a card that can hold no more addresses.
type Limit struct {
	MaxPods bool // the pool holds MaxPods addresses for pods already
	ENIs    int  // ENI slots of the card (unmanaged ones and a trunk reservation included)
	Slots   int  // secondary addresses (or prefixes) per ENI
	Total   int  // pod addresses the pool holds
	Cooling int  // of Total, addresses in their cooldown
}

// AtHardLimit reports whether no action can add an address to the card:
// every ENI slot is taken and every ENI pods may use holds its maximum of
// addresses or prefixes, or the pool already holds MaxPods addresses for
// pods (cooling ones not counted: they come back, but not as growth). It
// ignores whether growth is allowed right now (backoff, a full subnet):
// those pass, a hard limit does not.
func AtHardLimit(pool Pool, p Params) (Limit, bool) {
	s := pool.Stats(p.PrefixDelegation)
	l := Limit{ENIs: p.MaxENIs, Slots: p.slotsPerENI(), Total: s.Total, Cooling: s.Cooling}
	if p.atMaxPods(s) {
		l.MaxPods = true
		return l, true
	}
	if hasRoomForENI(pool, p, s) {
		return l, false
	}
	for _, e := range pool.ENIs {
		if e.Trunk || e.Excluded || (e.Primary && p.CustomNetworking) {
			continue
		}
		if len(e.CIDRs) < l.Slots {
			return l, false
		}
	}
	return l, true
}

// MoreENIs is how many ENIs to attach now for the ADDs that wait beyond
// what the pool holds, what is on its way and what ends its cooldown
// first: ADDs that arrive while an assign or an attach is under way need
// not wait for it to plan theirs. On its way: incoming addresses (or
// prefixes) being assigned to the card's ENIs, and inFlight ENIs being
// created and attached with perENI each. None while an ENI could still
// take more (the next plan assigns there, cheaper than an ENI; not one
// growth passes over, AssignSkipped), never
// beyond the ENI slots or max pods, and 0 when growth (or a new ENI) is not
// allowed now.
func MoreENIs(pool Pool, p Params, inFlight, perENI, incoming int) int {
	if !p.CanAllocate || p.CreateENIPaused != "" || p.Pending == 0 || perENI <= 0 {
		return 0
	}
	s := pool.Stats(p.PrefixDelegation)
	unit := 1
	if p.PrefixDelegation {
		unit = IPsPerPrefix
	}
	free := -incoming
	for _, e := range pool.ENIs {
		if !e.Trunk && !e.Excluded && !(e.Primary && p.CustomNetworking) && !p.AssignSkipped[e.ID] {
			free += max(p.slotsPerENI()-len(e.CIDRs), 0)
		}
	}
	if free > 0 {
		return 0
	}
	addrs := perENI * unit
	short := p.Pending - p.CoolingSoon - s.Available - incoming*unit - inFlight*addrs
	if short <= 0 {
		return 0
	}
	reserve := 0
	if p.ReserveTrunk && pool.Card == 0 && !s.HasTrunk {
		reserve = 1
	}
	room := min(p.MaxENIs-pool.Unmanaged-reserve-s.ENIs-inFlight,
		ceilDiv(p.podRoom(s)-incoming*unit-inFlight*addrs, addrs))
	return max(min(ceilDiv(short, addrs), room), 0)
}

// PerNewENI is how many addresses (or prefixes) to ask for each of the n
// ENIs that MoreENIs starts: a whole ENI's worth (perENI) each, except
// that together they hold no more than max pods leaves room for once what
// is on its way is counted (under prefix delegation in whole /28s, shared
// among the n rather than rounded up for each).
func PerNewENI(pool Pool, p Params, inFlight, perENI, incoming, n int) []int {
	unit := 1
	if p.PrefixDelegation {
		unit = IPsPerPrefix
	}
	s := pool.Stats(p.PrefixDelegation)
	left := p.podRoom(s) - (incoming+inFlight*perENI)*unit
	return splitCount(max(ceilDiv(left, unit), 1), n, perENI)
}
