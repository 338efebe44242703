package datastore

import (
	"net/netip"
	"slices"
)

// Each network card has its own Store, but EC2 may hand an address a card
// holds quarantined (quarantine.go) to an ENI of another card in the same
// subnet. That card's store would see a free address and give it to a new
// pod, and the quarantined pod's DEL would then delete that address's
// rules. So AddCIDR asks the other cards first (Options.Others): a CIDR
// another card still holds is refused as a duplicate, as within one store,
// until that card removes it; the quarantined entries another card holds
// inside the CIDR move to the adding store, which gives them back to their
// pods like its own. An entry the adding store cannot take, since its key
// holds another address there (a multi-NIC pod has one entry per card),
// keeps the CIDR refused the same way until that pod's DEL: one key holds
// one address per store, and the address must go to no other pod.
//
// At a start every card adds its CIDRs before any restores its
// checkpoint, so such an entry can also turn up inside a CIDR this store
// already holds (Adopt). The store drops that CIDR if nothing else is in
// it; otherwise (a prefix other pods use) it reserves the address: kept
// from new pods, counted as assigned, until a later Adopt no longer sees
// that pending allocation. It then cools here if the other store has it
// cooling (the pod's DEL), and is free otherwise. The reservation is not
// written: each start finds it again.

// reservation is a slot of this store kept from new pods for another
// store's pending allocation of key.
type reservation struct {
	sl    *slot
	key   Key
	alloc Allocation // the other store's, for the snapshot's row
}

// Foreign is what the node's other stores hold of a CIDR being added.
type Foreign struct {
	// Overlap is a CIDR another store holds that overlaps it, if any.
	Overlap netip.Prefix
	// Allocations and Cooling are the pending entries other stores hold
	// inside it.
	Allocations []Allocation
	Cooling     []Cooling
	// Forget drops there the entries this store took over, once it has
	// written them to its checkpoint (so a crash leaves them on both
	// cards, never on none). It returns the taken allocations no other
	// store held pending any more: released meanwhile (the pod's DEL
	// landed between the question and the take-over), so AddCIDR
	// releases them here too.
	Forget func(taken []Allocation, cooling []Cooling) (gone []Allocation)
}

// OverlappingCIDR returns a CIDR of the store that overlaps p.
func (s *Store) OverlappingCIDR(p netip.Prefix) (netip.Prefix, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.overlapping(p); c != nil {
		return c.prefix, true
	}
	return netip.Prefix{}, false
}

// PendingIn returns the pending allocations and cooling addresses inside
// p, every one when p is the zero Prefix.
func (s *Store) PendingIn(p netip.Prefix) ([]Allocation, []Cooling) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.now())
	var allocs []Allocation
	var cool []Cooling
	for a, sl := range s.pending {
		switch {
		case p.IsValid() && !p.Contains(a):
		case sl.allocIdx >= 0:
			allocs = append(allocs, s.allocs[sl.allocIdx])
		case sl.coolIdx >= 0:
			cool = append(cool, s.cool[sl.coolIdx])
		}
	}
	return allocs, cool
}

// ForgetPending drops the given entries if still pending as given (the
// same key on the address, or the address still cooling): another store
// took them over. It returns the allocations it did not hold that way.
func (s *Store) ForgetPending(allocs []Allocation, cool []Cooling) ([]Allocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := false
	var missing []Allocation
	for _, a := range allocs {
		if sl := s.pending[a.Addr]; sl != nil && sl.allocIdx >= 0 && s.allocs[sl.allocIdx].Key == a.Key {
			s.removeAlloc(sl)
			delete(s.pending, a.Addr)
			changed = true
			continue
		}
		missing = append(missing, a)
	}
	for _, cl := range cool {
		if sl := s.pending[cl.Addr]; sl != nil && sl.allocIdx < 0 && sl.coolIdx >= 0 {
			s.coolRemove(sl.coolIdx)
			s.pendingCool--
			delete(s.pending, cl.Addr)
			changed = true
		}
	}
	if !changed {
		return missing, nil
	}
	return missing, s.await(s.open)
}

// untakeable returns a pending allocation of another store inside the
// CIDR being added whose key holds another address in this one, and that
// address: takeOver cannot place it here.
func (s *Store) untakeable(f Foreign) (Allocation, netip.Addr, bool) {
	for _, a := range f.Allocations {
		if sl, ok := s.byKey[a.Key]; ok && sl.addr != a.Addr {
			return a, sl.addr, true
		}
	}
	return Allocation{}, netip.Addr{}, false
}

// Untakeable reports whether AddCIDR refuses the CIDR f describes for a
// pending allocation of another store it cannot take (untakeable): true
// until that pod's DEL.
func (s *Store) Untakeable(f Foreign) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, _, ok := s.untakeable(f)
	return ok
}

// takeOver makes the other stores' pending entries inside a CIDR being
// added pending here (adoptPending then places them) and returns those
// it took: not an address or key this store already has.
func (s *Store) takeOver(f Foreign) ([]Allocation, []Cooling) {
	var allocs []Allocation
	var cool []Cooling
	for _, a := range f.Allocations {
		if _, ok := s.byKey[a.Key]; ok || s.pending[a.Addr] != nil {
			continue
		}
		sl := &slot{addr: a.Addr, allocIdx: -1, coolIdx: -1}
		s.addAlloc(sl, a)
		s.pending[a.Addr] = sl
		allocs = append(allocs, a)
	}
	for _, cl := range f.Cooling {
		if s.cooldown == 0 || s.pending[cl.Addr] != nil {
			continue
		}
		sl := &slot{addr: cl.Addr, allocIdx: -1, coolIdx: -1}
		s.coolPush(sl, cl)
		s.pending[cl.Addr] = sl
		s.pendingCool++
		cool = append(cool, cl)
	}
	return allocs, cool
}

// Adopted is what Adopt placed, and what it could not.
type Adopted struct {
	Allocations []Allocation
	Cooling     []Cooling
	// Clashes are the allocations whose address this store has given to
	// another pod (a checkpoint from before the quarantine, or a write of
	// a move that failed): the holder keeps it, the pending pod stays
	// pending on its card.
	Clashes []Clash
	// Refused are the allocations whose key holds another address here
	// (a multi-NIC pod has one entry per card) while their address is
	// free in a CIDR of this store: one key holds one address per store,
	// so the CIDR is not this store's until that pod's DEL, as AddCIDR
	// refuses it. Dropped tells whether the store could drop it (it held
	// nothing else); if not, the store reserves it (see above).
	Refused []Refusal
	// Held are the allocations this store already holds in a CIDR under
	// the same key: a move whose checkpoint write failed. Returned once
	// written here, so the other stores can drop their copy.
	Held []Allocation
}

// Refusal is a CIDR of this store holding another store's pending
// allocation that this one cannot take.
type Refusal struct {
	Pending Allocation
	CIDR    netip.Prefix
	ENIID   string
	Dropped bool
}

// Clash is another store's pending allocation whose address a pod of
// this store holds.
type Clash struct {
	Pending Allocation
	Holder  Key
	ENIID   string
}

// Adopt places other stores' pending entries whose address is free in a
// CIDR of this one: at a start every card adds its CIDRs before any
// restores its checkpoint, so a card's restored pending pod whose address
// EC2 moved to another card's ENI meanwhile is not found by AddCIDR. It
// returns what it placed or already held once written (none when the
// write failed: they stay on their card as well), and the clashes either
// way; placed pods are in Readopted.
func (s *Store) Adopt(allocs []Allocation, cool []Cooling) (Adopted, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.now())
	var out Adopted
	type refusedIn struct {
		a Allocation
		c *cidr
	}
	var refused []refusedIn
	for _, a := range allocs {
		c, off, ok := s.freeSlot(a.Addr)
		if c != nil && !ok {
			switch sl := c.used[off]; {
			case sl.allocIdx < 0:
			case s.allocs[sl.allocIdx].Key != a.Key:
				out.Clashes = append(out.Clashes, Clash{Pending: a, Holder: s.allocs[sl.allocIdx].Key, ENIID: c.eni.info.ID})
			default:
				out.Held = append(out.Held, a)
			}
			continue
		}
		if !ok {
			continue
		}
		if sl, held := s.byKey[a.Key]; held {
			if sl.addr != a.Addr {
				refused = append(refused, refusedIn{a, c})
			}
			continue
		}
		sl := &slot{cidr: c, off: off, addr: a.Addr, allocIdx: -1, coolIdx: -1}
		c.used[off] = sl
		s.addAlloc(sl, a)
		s.adjust(c, 1, 0)
		s.readopted = append(s.readopted, sl)
		out.Allocations = append(out.Allocations, a)
	}
	for _, cl := range cool {
		c, off, ok := s.freeSlot(cl.Addr)
		if !ok || s.cooldown == 0 {
			continue
		}
		sl := &slot{cidr: c, off: off, addr: cl.Addr, allocIdx: -1, coolIdx: -1}
		c.used[off] = sl
		s.coolPush(sl, cl)
		s.adjust(c, 0, 1)
		out.Cooling = append(out.Cooling, cl)
	}
	for _, r := range refused {
		rf := Refusal{Pending: r.a, CIDR: r.c.prefix, ENIID: r.c.eni.info.ID}
		switch {
		case s.cidrs[r.c.prefix] != r.c:
			rf.Dropped = true // for an earlier refusal in the same CIDR
		case r.c.empty():
			s.dropCIDR(r.c)
			rf.Dropped = true
		default:
			s.reserve(r.c, r.a)
		}
		out.Refused = append(out.Refused, rf)
	}
	out.Cooling = append(out.Cooling, s.endReservations(allocs, cool)...)
	if len(out.Allocations)+len(out.Cooling)+len(out.Held) == 0 {
		return out, nil
	}
	if err := s.await(s.open); err != nil {
		return Adopted{Clashes: out.Clashes, Refused: out.Refused}, err
	}
	return out, nil
}

// reserve keeps a's address, free in c, from new pods. Called with s.mu
// held.
func (s *Store) reserve(c *cidr, a Allocation) {
	off := offsetOf(c.prefix, a.Addr)
	sl := &slot{cidr: c, off: off, addr: a.Addr, allocIdx: -1, coolIdx: -1}
	c.used[off] = sl
	s.reserved[a.Addr] = reservation{sl: sl, key: a.Key, alloc: a}
	s.adjust(c, 1, 0)
}

// Reserves reports whether the store keeps addr from new pods for
// another store's pending allocation of key.
func (s *Store) Reserves(addr netip.Addr, key Key) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.reserved[addr]
	return ok && r.key == key
}

// endReservations ends the reservations whose allocation is no longer
// among the other stores' pending ones (allocs): the address cools if
// they have it cooling (returned, for them to forget), else it is free.
// Called with s.mu held.
func (s *Store) endReservations(allocs []Allocation, cool []Cooling) []Cooling {
	var cooled []Cooling
	for addr, r := range s.reserved {
		if slices.ContainsFunc(allocs, func(a Allocation) bool { return a.Addr == addr && a.Key == r.key }) {
			continue
		}
		delete(s.reserved, addr)
		c := r.sl.cidr
		i := slices.IndexFunc(cool, func(cl Cooling) bool { return cl.Addr == addr })
		if i < 0 || s.cooldown == 0 {
			c.release(r.sl.off)
			s.adjust(c, -1, 0)
			continue
		}
		s.coolPush(r.sl, cool[i])
		s.adjust(c, -1, 1)
		cooled = append(cooled, cool[i])
	}
	return cooled
}

// freeSlot returns the CIDR of the store holding a and a's offset in it,
// and whether a is free there. Called with s.mu held.
func (s *Store) freeSlot(a netip.Addr) (*cidr, uint64, bool) {
	c := s.cidrOf(a)
	if c == nil {
		return nil, 0, false
	}
	off := offsetOf(c.prefix, a)
	return c, off, c.used[off] == nil
}

// HeldBy returns the assignment holding addr in a CIDR of the store, if
// any (pending allocations are in no CIDR).
func (s *Store) HeldBy(addr netip.Addr) (Assignment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.cidrOf(addr)
	if c == nil {
		return Assignment{}, false
	}
	sl := c.used[offsetOf(c.prefix, addr)]
	if sl == nil || sl.allocIdx < 0 {
		return Assignment{}, false
	}
	return s.assignmentOf(sl), true
}
