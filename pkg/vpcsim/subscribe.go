package vpcsim

import (
	"net/netip"
	"sort"
)

// enqueue appends events and returns the sequence number of the last one
// (0 for none); the caller holds s.mu so order matches the model.
func (s *Sim) enqueue(events []Event) uint64 {
	if len(events) == 0 {
		return 0
	}
	s.qmu.Lock()
	defer s.qmu.Unlock()
	for _, e := range events {
		s.seq++
		s.queue = append(s.queue, queuedEvent{seq: s.seq, ev: e})
	}
	return s.seq
}

// dispatchThrough delivers queued events and returns once every event up
// to seq has reached the subscribers, even when another goroutine is the
// one delivering them: an EC2 call answers only after the data plane
// applied what it changed (an address is routed before ipamd learns it).
func (s *Sim) dispatchThrough(seq uint64) {
	s.dispatch()
	s.qmu.Lock()
	for s.delivered < seq {
		s.dcond.Wait()
	}
	s.qmu.Unlock()
}

// dispatch delivers queued events in order. Only one goroutine delivers at a
// time; others leave their events to it.
func (s *Sim) dispatch() {
	for {
		if !s.dmu.TryLock() {
			return
		}
		for {
			s.qmu.Lock()
			batch := s.queue
			s.queue = nil
			subs := make([]*subscriber, 0, len(s.subs))
			ids := make([]int, 0, len(s.subs))
			for id := range s.subs {
				ids = append(ids, id)
			}
			sort.Ints(ids)
			for _, id := range ids {
				subs = append(subs, s.subs[id])
			}
			s.qmu.Unlock()
			if len(batch) == 0 {
				break
			}
			for _, q := range batch {
				for _, sub := range subs {
					if q.seq >= sub.start {
						sub.fn(q.ev)
					}
				}
			}
			s.qmu.Lock()
			s.delivered = batch[len(batch)-1].seq
			s.dcond.Broadcast()
			s.qmu.Unlock()
		}
		s.dmu.Unlock()
		// an event queued between our last check and Unlock must not be stranded
		s.qmu.Lock()
		more := len(s.queue) > 0
		s.qmu.Unlock()
		if !more {
			return
		}
	}
}

// Subscribe registers fn for model events. It first receives the current
// state as events (InstanceRunning, ENIAttached for each attached ENI, and
// AddressesAssigned for unattached ENIs), then every change in order. fn is
// called from one goroutine at a time and must not call into the Sim (an
// EC2 call waits for the delivery of its own events).
func (s *Sim) Subscribe(fn func(Event)) (cancel func()) {
	s.dmu.Lock()
	s.mu.Lock()
	s.w.settle()
	events := s.w.events
	s.w.events = nil
	if len(events) > 0 {
		s.recordIMDS(false)
	}
	s.enqueue(events)
	replay := s.w.replay()
	s.qmu.Lock()
	id := s.nextID
	s.nextID++
	// events queued before now but not yet delivered are covered by replay
	s.subs[id] = &subscriber{fn: fn, start: s.seq + 1}
	s.qmu.Unlock()
	s.mu.Unlock()
	for _, e := range replay {
		fn(e)
	}
	s.dmu.Unlock()
	s.dispatch()
	return func() {
		s.qmu.Lock()
		delete(s.subs, id)
		s.qmu.Unlock()
	}
}

// replay describes the current world as events.
func (w *world) replay() []Event {
	var out []Event
	for _, id := range sortedKeys(w.instances) {
		in := w.instances[id]
		if in.state != "running" {
			continue
		}
		v := w.vpcs[in.vpcID]
		out = append(out, InstanceRunning{InstanceID: id, Type: in.typ.Name, AZ: in.az, VPCID: v.id, VPCCIDRs: append([]netip.Prefix(nil), v.cidrs...), PrimaryIP: in.primaryIP, PublicIP: in.publicIP})
		for _, e := range w.instanceENIs(id) {
			if e.att.status == "attaching" {
				continue
			}
			sn := w.subnets[e.subnetID]
			out = append(out, ENIAttached{InstanceID: id, ENIID: e.id, MAC: e.mac, DeviceIndex: e.att.deviceIndex, NetworkCard: e.att.card, PrimaryIP: e.primaryIP, PublicIP: e.publicIP, SubnetCIDR: sn.cidr, SubnetIPv6CIDR: sn.ipv6, Addresses: e.allPrefixes()})
		}
	}
	for _, id := range sortedKeys(w.enis) {
		if e := w.enis[id]; e.att == nil {
			out = append(out, AddressesAssigned{ENIID: id, Prefixes: e.allPrefixes()})
		}
	}
	for _, id := range sortedKeys(w.assocs) {
		out = append(out, w.branchEvent(w.assocs[id], true))
	}
	return append(out, w.sgSnapshot())
}
