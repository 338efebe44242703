package datastore

import (
	"cmp"
	"container/heap"
	"net/netip"
	"slices"
	"time"
)

// Stats returns the pool counters (O(1) plus expiring cooldowns).
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.now())
	m := s.sums[s.mode]
	st := Stats{
		Mode:         s.mode,
		TotalIPs:     m.total,
		AssignedIPs:  m.assigned,
		CoolingIPs:   m.cooling,
		AvailableIPs: m.available(),
		TotalCIDRs:   m.cidrs,
		FreeCIDRs:    m.freeCIDRs,
		Pods:         len(s.allocs),
		Pending:      len(s.pending) - s.pendingCool,
		ENIs:         len(s.enis),
		ExcludedENIs: s.excluded,
	}
	p := s.sums[ModePrefixIPv4]
	if s.mode == ModeIPv6 {
		p = s.sums[ModeIPv6]
	}
	st.TotalPrefixes, st.FreePrefixes = p.cidrs, p.freeCIDRs
	return st
}

// ENIs returns a copy of every ENI with per-CIDR counters (no per-address
// lists), sorted by device number.
func (s *Store) ENIs() []ENIInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.now())
	return s.eniInfos(false)
}

// Snapshot is ENIs plus every assigned and cooling address: a deep copy for
// introspection, O(addresses).
func (s *Store) Snapshot() []ENIInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.now())
	return s.eniInfos(true)
}

// ENI returns one ENI's counters.
func (s *Store) ENI(id string) (ENIInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.now())
	e, ok := s.enis[id]
	if !ok {
		return ENIInfo{}, false
	}
	return s.eniInfo(e, false), true
}

// AssignedIn returns how many addresses are assigned on ENI id and in its
// CIDR prefix (-1 when prefix is not one of its CIDRs): O(1), for the
// gauges an ADD or DEL refreshes, where ENI would copy every CIDR. ok is
// false for an unknown ENI.
func (s *Store) AssignedIn(id string, prefix netip.Prefix) (eniAssigned, cidrAssigned int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.enis[id]
	if !ok {
		return 0, 0, false
	}
	cidrAssigned = -1
	if c, in := e.cidrs[prefix]; in {
		cidrAssigned = c.assigned
	}
	return e.assigned, cidrAssigned, true
}

func (s *Store) eniInfos(full bool) []ENIInfo {
	out := make([]ENIInfo, 0, len(s.enis))
	for _, e := range s.enis {
		out = append(out, s.eniInfo(e, full))
	}
	slices.SortFunc(out, func(a, b ENIInfo) int {
		return cmp.Or(cmp.Compare(a.DeviceNumber, b.DeviceNumber), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func (s *Store) eniInfo(e *eni, full bool) ENIInfo {
	info := ENIInfo{ENI: e.info, AssignedIPs: e.assigned, CoolingIPs: e.cooling, CIDRs: make([]CIDRInfo, 0, len(e.cidrs))}
	for _, c := range e.cidrs {
		ci := CIDRInfo{Prefix: c.prefix, Class: c.class, Size: int(c.size), Assigned: c.assigned, Cooling: c.cooling}
		if full {
			for _, sl := range c.used {
				if sl.allocIdx >= 0 {
					ci.Allocations = append(ci.Allocations, s.allocs[sl.allocIdx])
				} else if sl.coolIdx >= 0 {
					ci.CoolingList = append(ci.CoolingList, CoolingAddr{Cooling: s.cool[sl.coolIdx], AssignedAt: sl.lastAssigned})
				} else if r, ok := s.reserved[sl.addr]; ok {
					ci.Reserved = append(ci.Reserved, r.alloc)
				}
			}
			sortAllocations(ci.Allocations)
			sortAllocations(ci.Reserved)
			slices.SortFunc(ci.CoolingList, func(a, b CoolingAddr) int { return a.Addr.Compare(b.Addr) })
		}
		info.CIDRs = append(info.CIDRs, ci)
	}
	slices.SortFunc(info.CIDRs, func(a, b CIDRInfo) int { return a.Prefix.Addr().Compare(b.Prefix.Addr()) })
	return info
}

func sortAllocations(a []Allocation) {
	slices.SortFunc(a, func(x, y Allocation) int { return x.Addr.Compare(y.Addr) })
}

// AllocatedIPs returns every assignment (pending ones included, with no
// ENI), sorted by address.
func (s *Store) AllocatedIPs() []Assignment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Assignment, 0, len(s.allocSlots))
	for _, sl := range s.allocSlots {
		out = append(out, s.assignmentOf(sl))
	}
	sortAssignments(out)
	return out
}

// Pending returns restored allocations still waiting for their CIDR.
func (s *Store) Pending() []Allocation {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Allocation, 0, len(s.pending))
	for _, sl := range s.pending {
		if sl.allocIdx >= 0 {
			out = append(out, s.allocs[sl.allocIdx])
		}
	}
	sortAllocations(out)
	return out
}

// PendingCooling lists the cooling addresses restored in no CIDR the
// store knows whose cooldown has not ended yet.
func (s *Store) PendingCooling() []netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.now())
	var out []netip.Addr
	for addr, sl := range s.pending {
		if sl.allocIdx < 0 {
			out = append(out, addr)
		}
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// NextCoolingEnd returns when the earliest cooling address Assign can
// hand out ends its cooldown (false when none cools), so a waiting ADD
// can wake then (see usableCoolingEnd).
func (s *Store) NextCoolingEnd() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.now())
	return s.usableCoolingEnd()
}

// usableCoolingEnd is when the earliest cooling address Assign can hand
// out ends its cooldown: one in a CIDR of the active mode on an ENI pods
// may use. A pending one (in no CIDR: a quarantined pod's DEL, a dropped
// pending pod) or one of another mode or an excluded ENI serves no ADD
// when it ends; counting it made an ADD on a full node wait for it
// instead of failing at once. The walk visits the heap in order from its
// root and stops at the first usable address: O(k log k) for the k
// earlier ones that are not. Called with s.mu held.
func (s *Store) usableCoolingEnd() (time.Time, bool) {
	if len(s.cool) == 0 {
		return time.Time{}, false
	}
	next := &coolWalk{s: s, idx: []int{0}}
	for next.Len() > 0 {
		i := heap.Pop(next).(int)
		if c := s.coolSlots[i].cidr; c != nil && c.class == s.mode && !c.eni.info.ExcludedForPods {
			return s.cool[i].UnassignedAt.Add(s.cooldown), true
		}
		for _, child := range []int{2*i + 1, 2*i + 2} {
			if child < len(s.cool) {
				heap.Push(next, child)
			}
		}
	}
	return time.Time{}, false
}

// coolWalk orders indexes of the cooling heap by their cooldown's start.
type coolWalk struct {
	s   *Store
	idx []int
}

func (w *coolWalk) Len() int           { return len(w.idx) }
func (w *coolWalk) Less(i, j int) bool { return w.s.coolLess(w.idx[i], w.idx[j]) }
func (w *coolWalk) Swap(i, j int)      { w.idx[i], w.idx[j] = w.idx[j], w.idx[i] }
func (w *coolWalk) Push(x any)         { w.idx = append(w.idx, x.(int)) }
func (w *coolWalk) Pop() any {
	last := w.idx[len(w.idx)-1]
	w.idx = w.idx[:len(w.idx)-1]
	return last
}
