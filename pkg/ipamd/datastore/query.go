package datastore

import (
	"cmp"
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
				}
			}
			sortAllocations(ci.Allocations)
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

// FreeableCIDRs returns up to n CIDRs of the active mode with nothing
// assigned and nothing cooling, in the order they should be released so the
// pool drains towards whole free ENIs: excluded ENIs first, then non-primary
// ENIs with the fewest assigned addresses (highest device number on ties),
// the primary ENI last; within an ENI the highest address first (packing
// fills from the lowest). n <= 0 returns all. O(CIDRs log CIDRs).
func (s *Store) FreeableCIDRs(n int) []CIDRRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.now())
	return s.emptyCIDRs(n, func(m Mode) bool { return m == s.mode })
}

// StrandedCIDRs returns the CIDRs of the active family that are not of the
// active mode (left over from a prefix-delegation toggle) with nothing
// assigned and nothing cooling, in FreeableCIDRs order. They can never serve
// a pod until the mode switches back.
func (s *Store) StrandedCIDRs() []CIDRRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(s.now())
	return s.emptyCIDRs(0, func(m Mode) bool { return m != s.mode && (m == ModeIPv6) == (s.mode == ModeIPv6) })
}

func (s *Store) emptyCIDRs(n int, class func(Mode) bool) []CIDRRef {
	type cand struct {
		e *eni
		c *cidr
	}
	var cs []cand
	for _, e := range s.enis {
		for m := range Mode(numModes) {
			if !class(m) || e.counts[m].freeCIDRs == 0 {
				continue
			}
			for _, c := range e.cidrs {
				if c.class == m && c.empty() {
					cs = append(cs, cand{e, c})
				}
			}
		}
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if a.e != b.e {
			return cmp.Or(
				-cmp.Compare(b2i(a.e.info.ExcludedForPods), b2i(b.e.info.ExcludedForPods)),
				cmp.Compare(b2i(a.e.info.IsPrimary), b2i(b.e.info.IsPrimary)),
				cmp.Compare(a.e.assigned, b.e.assigned),
				-cmp.Compare(a.e.info.DeviceNumber, b.e.info.DeviceNumber),
				cmp.Compare(a.e.info.ID, b.e.info.ID))
		}
		return -a.c.prefix.Addr().Compare(b.c.prefix.Addr())
	})
	if n > 0 && len(cs) > n {
		cs = cs[:n]
	}
	out := make([]CIDRRef, len(cs))
	for i, c := range cs {
		out[i] = CIDRRef{ENIID: c.e.info.ID, Prefix: c.c.prefix}
	}
	return out
}

// DeletableENI returns an ENI that can be detached and deleted: not primary,
// not trunk, not EFA, older than the minimum ENI age, with no assigned and
// no cooling address, and whose removal keeps the targets of p (upstream
// getDeletableENI: the other usable ENIs must still offer WarmIPTarget
// available addresses, MinimumIPTarget total addresses and, in prefix mode,
// WarmPrefixTarget free prefixes; IP targets round up to whole prefixes in
// prefix mode). Among candidates the highest device number is chosen.
func (s *Store) DeletableENI(p DeletePolicy) (ENIInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.advance(now)
	var best *eni
	for _, e := range s.enis {
		if !s.deletable(e, p, now) {
			continue
		}
		if best == nil || e.info.DeviceNumber > best.info.DeviceNumber ||
			(e.info.DeviceNumber == best.info.DeviceNumber && e.info.ID < best.info.ID) {
			best = e
		}
	}
	if best == nil {
		return ENIInfo{}, false
	}
	return s.eniInfo(best, false), true
}

func (s *Store) deletable(e *eni, p DeletePolicy, now time.Time) bool {
	if e.info.IsPrimary || e.info.IsTrunk || e.info.IsEFA || e.assigned > 0 || e.cooling > 0 ||
		now.Sub(e.info.CreatedAt) < s.minENIAge {
		return false
	}
	other := s.sums[s.mode]
	if !e.info.ExcludedForPods {
		other.add(e.counts[s.mode], -1)
	}
	round := func(n int) int { return n }
	if s.mode == ModePrefixIPv4 {
		round = func(n int) int { return (n + 15) / 16 * 16 }
	}
	if p.WarmIPTarget > 0 && other.available() < round(p.WarmIPTarget) {
		return false
	}
	if p.MinimumIPTarget > 0 && other.total < round(p.MinimumIPTarget) {
		return false
	}
	if s.mode == ModePrefixIPv4 && p.WarmPrefixTarget > 0 && other.freeCIDRs < p.WarmPrefixTarget {
		return false
	}
	return true
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
