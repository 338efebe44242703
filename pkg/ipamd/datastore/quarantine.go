package datastore

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
