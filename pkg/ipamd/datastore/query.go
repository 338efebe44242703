package datastore

import (
	"cmp"
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
					ci.CoolingList = append(ci.CoolingList, s.cool[sl.coolIdx])
				} else if r, ok := s.reserved[sl.addr]; ok {
					ci.Reserved = append(ci.Reserved, r.alloc)
				}
			}
			sortAllocations(ci.Allocations)
			sortAllocations(ci.Reserved)
			slices.SortFunc(ci.CoolingList, func(a, b Cooling) int { return a.Addr.Compare(b.Addr) })
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

// NextCoolingEnd returns when the earliest cooling address ends its
// cooldown (false when none cools), so a waiting ADD can wake then.
func (s *Store) NextCoolingEnd() (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cool) == 0 {
		return time.Time{}, false
	}
	return s.cool[0].UnassignedAt.Add(s.cooldown), true
}
