package datastore

import (
	"fmt"
	"net/netip"
)

// Assign hands key an address of the active mode, or returns the address
// it already holds (idempotent ADD). The choice is deterministic (see
// eniLess/cidrLess). Assign returns once a checkpoint write holding the
// assignment has finished; concurrent changes share that write (commit.go).
// If it fails the assignment is undone and the error returned.
func (s *Store) Assign(key Key, meta Metadata) (Assignment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.advance(now)
	var dropped *Allocation
	if sl, ok := s.byKey[key]; ok {
		if sl.cidr != nil {
			return s.held(key, sl)
		}
		// A pending restored entry for the same key: the runtime is
		// setting the pod up again, so the old (unplaceable) address goes.
		a := s.removeAlloc(sl)
		delete(s.pending, sl.addr)
		dropped = &a
	}
	e, ok := s.cand[s.mode].min()
	if !ok {
		s.restoreDropped(dropped)
		return Assignment{}, s.noAddressError(key)
	}
	c, _ := e.cand[s.mode].min()
	off, ok := c.takeLowest()
	if !ok {
		s.restoreDropped(dropped)
		// Counters said available but the free structure disagrees.
		return Assignment{}, fmt.Errorf("assign %s: %w: CIDR %s counts %d available but has none (internal inconsistency)",
			key, ErrNoAvailableAddress, c.prefix, c.available())
	}
	b := s.open
	sl := &slot{cidr: c, off: off, addr: addrAt(c.prefix, off), allocIdx: -1, coolIdx: -1, batch: b}
	c.used[off] = sl
	s.addAlloc(sl, Allocation{Key: key, Addr: sl.addr, AssignedAt: now, Meta: meta})
	s.adjust(c, 1, 0)
	b.undo = append(b.undo, pendingAssign{key: key, sl: sl, dropped: dropped})
	out := s.assignmentOf(sl)
	if err := s.await(b); err != nil {
		return Assignment{}, fmt.Errorf("assign %s: %w", key, err)
	}
	return out, nil
}

func (s *Store) noAddressError(key Key) error {
	m := s.sums[s.mode]
	e := &NoAvailableAddressError{Mode: s.mode, Total: m.total, Assigned: m.assigned, Cooling: m.cooling}
	e.CoolingUntil, _ = s.usableCoolingEnd()
	switch {
	case len(s.enis) == 0:
		e.Reason = "no ENIs"
	case len(s.enis) == s.excluded:
		e.Reason = fmt.Sprintf("all %d ENIs are excluded for pods", len(s.enis))
	case m.cidrs == 0:
		e.Reason = fmt.Sprintf("no CIDRs of the active mode (%s)", s.mode)
	case m.cooling > 0:
		e.Reason = fmt.Sprintf("%d of %d addresses assigned, %d cooling down (first available at %s)",
			m.assigned, m.total, m.cooling, e.CoolingUntil.UTC().Format("15:04:05.000Z07:00"))
	default:
		e.Reason = fmt.Sprintf("all %d addresses assigned", m.total)
	}
	return fmt.Errorf("assign %s: %w", key, e)
}

// Unassign releases the address key holds and returns what it held. A key
// the store does not know gets ErrUnknownPod. Entries upstream migrated from
// CRI state (network "_migrated-from-cri", interface "unknown") match by
// container id. The released address cools down for the cooldown period.
//
// Unassign returns once a checkpoint write holding the release has
// finished (shared with concurrent changes, see commit.go). If that write
// fails the release still stands: Unassign returns the Assignment together
// with an error wrapping ErrCheckpoint, and the next successful write
// persists the release. Undoing it would leave the address held by a key
// whose pod is gone (the runtime does not retry a DEL the plugin reported
// as done), with nothing left to ever release it.
func (s *Store) Unassign(key Key) (Assignment, error) {
	return s.unassign(key, netip.Addr{}, false, true)
}

// UnassignAddr is Unassign only while key still holds addr (exactly that
// key, no migrated match): a sweep that decided on a stale view must not
// release an address the key was given since.
func (s *Store) UnassignAddr(key Key, addr netip.Addr) (Assignment, error) {
	return s.unassign(key, addr, true, true)
}

// Withdraw is Unassign without the cooldown, for an assignment whose
// address never reached a pod (the undo of a partial multi-NIC ADD): a
// cooling address serves nobody for the cooldown period, and a waiting
// multi-NIC ADD would withdraw one at every try. Exactly key, no migrated
// match.
func (s *Store) Withdraw(key Key) (Assignment, error) {
	return s.unassign(key, netip.Addr{}, true, false)
}

// unassign releases what key holds (only while it holds addr, when
// valid); exact: no migrated match; cool: the address cools down.
func (s *Store) unassign(key Key, addr netip.Addr, exact, cool bool) (Assignment, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.advance(now)
	sl, ok := s.byKey[key]
	if !ok && !exact {
		sl, ok = s.byKey[Key{NetworkName: MigratedNetworkName, ContainerID: key.ContainerID, IfName: MigratedIfName}]
	}
	if !ok || (addr.IsValid() && sl.addr != addr) {
		return Assignment{}, fmt.Errorf("%w: %s", ErrUnknownPod, key)
	}
	out := s.assignmentOf(sl)
	s.removeAlloc(sl)
	switch c := sl.cidr; {
	case c == nil && cool && s.cooldown > 0:
		// Pending (quarantined): should its CIDR come back, the address
		// cools down there like any other released one.
		s.coolPush(sl, Cooling{Addr: sl.addr, UnassignedAt: now})
		s.pendingCool++
	case c == nil:
		delete(s.pending, sl.addr)
	case cool && s.cooldown > 0:
		s.coolPush(sl, Cooling{Addr: sl.addr, UnassignedAt: now})
		s.adjust(c, -1, 1)
	default:
		c.release(sl.off)
		s.adjust(c, -1, 0)
	}
	if err := s.await(s.open); err != nil {
		return out, fmt.Errorf("unassign %s: released in memory, not yet persisted: %w", key, err)
	}
	return out, nil
}

// held returns what sl, key's slot in a CIDR, holds. A repeated ADD must
// not return before the first one's write, nor succeed where that write
// failed. Called with s.mu held; await may release it.
func (s *Store) held(key Key, sl *slot) (Assignment, error) {
	out := s.assignmentOf(sl)
	if b := sl.batch; b != nil {
		if err := s.await(b); err != nil {
			return Assignment{}, fmt.Errorf("assign %s: %w", key, err)
		}
	}
	return out, nil
}

// Held returns what key holds in a CIDR of the store, as a repeated
// Assign does: once the checkpoint write holding it has finished, and
// that write's error if it failed. A pending restored entry (its CIDR
// unknown) is not held: Assign replaces it. ok is false when key holds
// nothing Assign would return.
func (s *Store) Held(key Key) (a Assignment, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, found := s.byKey[key]
	if !found || sl.cidr == nil {
		return Assignment{}, false, nil
	}
	a, err = s.held(key, sl)
	return a, err == nil, err
}

// Lookup returns what key holds, a pending restored entry included (with
// no CIDR or ENI), whether or not its write has finished.
func (s *Store) Lookup(key Key) (Assignment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sl, ok := s.byKey[key]
	if !ok {
		return Assignment{}, false
	}
	return s.assignmentOf(sl), true
}

// assignmentOf describes an assigned slot.
func (s *Store) assignmentOf(sl *slot) Assignment {
	a := s.allocs[sl.allocIdx]
	out := Assignment{Key: a.Key, Meta: a.Meta, Addr: a.Addr, AssignedAt: a.AssignedAt}
	if c := sl.cidr; c != nil {
		out.CIDR = c.prefix
		out.ENIID = c.eni.info.ID
		out.DeviceNumber = c.eni.info.DeviceNumber
		out.RouteTableID = c.eni.info.RouteTableID
	}
	return out
}

func (s *Store) addAlloc(sl *slot, a Allocation) {
	sl.allocIdx = len(s.allocs)
	s.allocs = append(s.allocs, a)
	s.markAlloc(sl.allocIdx)
	s.allocSlots = append(s.allocSlots, sl)
	s.byKey[a.Key] = sl
}

// removeAlloc drops sl's allocation in O(1) (swap with the last).
func (s *Store) removeAlloc(sl *slot) Allocation {
	i, last := sl.allocIdx, len(s.allocs)-1
	a := s.allocs[i]
	if i != last {
		s.allocs[i] = s.allocs[last]
		s.markAlloc(i)
		s.allocSlots[i] = s.allocSlots[last]
		s.allocSlots[i].allocIdx = i
	}
	s.allocs[last] = Allocation{}
	s.allocSlots[last] = nil
	s.allocs = s.allocs[:last]
	s.allocSlots = s.allocSlots[:last]
	delete(s.byKey, a.Key)
	sl.allocIdx = -1
	sl.lastAssigned = a.AssignedAt
	return a
}

// The cooling list is a min-heap on UnassignedAt kept in two parallel
// slices, so the checkpoint can be written from it without copying.
func (s *Store) coolPush(sl *slot, c Cooling) {
	s.cool = append(s.cool, c)
	s.coolSlots = append(s.coolSlots, sl)
	sl.coolIdx = len(s.cool) - 1
	s.markCool(sl.coolIdx)
	s.coolUp(sl.coolIdx)
}

func (s *Store) coolRemove(i int) {
	last := len(s.cool) - 1
	sl := s.coolSlots[i]
	if i != last {
		s.coolSwap(i, last)
	}
	s.cool[last] = Cooling{}
	s.coolSlots[last] = nil
	s.cool = s.cool[:last]
	s.coolSlots = s.coolSlots[:last]
	sl.coolIdx = -1
	if i != last {
		s.coolDown(i)
		s.coolUp(i)
	}
}

func (s *Store) coolLess(i, j int) bool { return s.cool[i].UnassignedAt.Before(s.cool[j].UnassignedAt) }

func (s *Store) coolSwap(i, j int) {
	s.cool[i], s.cool[j] = s.cool[j], s.cool[i]
	s.markCool(i)
	s.markCool(j)
	s.coolSlots[i], s.coolSlots[j] = s.coolSlots[j], s.coolSlots[i]
	s.coolSlots[i].coolIdx = i
	s.coolSlots[j].coolIdx = j
}

func (s *Store) coolUp(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.coolLess(i, p) {
			return
		}
		s.coolSwap(i, p)
		i = p
	}
}

func (s *Store) coolDown(i int) {
	n := len(s.cool)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		j := l
		if r := l + 1; r < n && s.coolLess(r, l) {
			j = r
		}
		if !s.coolLess(j, i) {
			return
		}
		s.coolSwap(i, j)
		i = j
	}
}

// adoptPending places pending restored allocations and cooling addresses
// that fall inside c.
func (s *Store) adoptPending(c *cidr) {
	if len(s.pending) == 0 {
		return
	}
	adopt := func(sl *slot) {
		delete(s.pending, sl.addr)
		sl.cidr = c
		sl.off = offsetOf(c.prefix, sl.addr)
		c.used[sl.off] = sl
		if sl.allocIdx >= 0 {
			s.adjust(c, 1, 0)
			s.readopted = append(s.readopted, sl)
		} else {
			s.pendingCool--
			s.adjust(c, 0, 1)
		}
	}
	if c.size <= uint64(len(s.pending)) {
		for off := uint64(0); off < c.size; off++ {
			if sl := s.pending[addrAt(c.prefix, off)]; sl != nil {
				adopt(sl)
			}
		}
		return
	}
	for a, sl := range s.pending {
		if c.prefix.Contains(a) {
			adopt(sl)
		}
	}
}

// DropPending forgets pending allocations (ipamd calls it once EC2 says
// their addresses are no longer the node's) and returns them; pending
// cooling addresses stay until their cooldown ends. A dropped address
// cools too, as a DEL's would: its pod is gone without a DEL, and should
// EC2 hand the address back, or another card keep it for that pod
// (othercards.go), no new pod may inherit the gone pod's conntrack and
// policy state. An allocation keep accepts stays pending: its pod still
// holds the address (see quarantine). keep nil keeps none.
func (s *Store) DropPending(keep func(Allocation) bool) ([]Allocation, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		return nil, nil
	}
	now := s.now()
	var out []Allocation
	for addr, sl := range s.pending {
		switch {
		case sl.allocIdx < 0:
			// A cooling address keeps its cooldown (advance ends it):
			// should EC2 hand it back meanwhile, it must not go to a new
			// pod while peers may still name the one just deleted.
			continue
		case keep != nil && keep(s.allocs[sl.allocIdx]):
			continue
		case s.cooldown > 0:
			out = append(out, s.removeAlloc(sl))
			s.coolPush(sl, Cooling{Addr: addr, UnassignedAt: now})
			s.pendingCool++
			continue
		default:
			out = append(out, s.removeAlloc(sl))
		}
		delete(s.pending, addr)
	}
	sortAllocations(out)
	if err := s.await(s.open); err != nil {
		return out, fmt.Errorf("drop pending allocations: %w", err)
	}
	return out, nil
}
