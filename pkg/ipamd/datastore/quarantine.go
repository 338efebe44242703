package datastore

import "slices"

// An address EC2 takes from the node (its ENI detached, or the secondary
// address or prefix unassigned) while a pod holds it is still in that
// pod's network namespace: the runtime has sent no DEL. EC2 may hand the
// address to the node again (a new ENI gets the lowest free addresses of
// the subnet), and giving it to another pod then would put two pods on one
// address. So the store keeps such an allocation, quarantined, as pending:
// the same state a restored allocation in no known CIDR is in. It stays in
// the checkpoint as the ordinary allocation it was (the upstream format
// unchanged), so a restart restores it pending again; AddCIDR gives the
// address back to its pod, never to another; Unassign (the pod's DEL)
// releases it into the cooldown; DropPending forgets it.

// quarantine detaches an assigned slot from its CIDR, which is being
// removed, and keeps the allocation pending. The caller adjusts the CIDR's
// counters. An address in a removed CIDR is in no other CIDR of the store
// (CIDRs never overlap), so no pending entry holds it yet.
func (s *Store) quarantine(sl *slot) {
	delete(sl.cidr.used, sl.off)
	sl.cidr, sl.off = nil, 0
	s.pending[sl.addr] = sl
}

// Readopted returns, and forgets, the pending allocations AddCIDR has
// placed in a CIDR since the last call and still held, sorted by address:
// their pods hold their address on an ENI again, whose table their rules
// must now name.
func (s *Store) Readopted() []Assignment {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Assignment
	for _, sl := range s.readopted {
		// A slot released since has no allocation; one evicted again
		// has no CIDR (and is in the list again if placed again).
		if sl.allocIdx >= 0 && sl.cidr != nil && !slices.ContainsFunc(out, func(a Assignment) bool { return a.Addr == sl.addr }) {
			out = append(out, s.assignmentOf(sl))
		}
	}
	clear(s.readopted)
	s.readopted = s.readopted[:0]
	sortAssignments(out)
	return out
}
