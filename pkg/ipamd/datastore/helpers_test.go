package datastore

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"
)

// fakeClock is the injected clock of every test.
type fakeClock struct{ t time.Time }

func newClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

func podKey(i int) Key {
	return Key{NetworkName: "aws-cni", ContainerID: fmt.Sprintf("c%04d", i), IfName: "eth0"}
}

func podMeta(i int) Metadata {
	return Metadata{K8sPodNamespace: "default", K8sPodName: fmt.Sprintf("pod-%d", i), InterfacesCount: 1}
}

type fixture struct {
	t     *testing.T
	s     *Store
	clock *fakeClock
	cp    *MemCheckpointer
}

func newFixture(t *testing.T, mode Mode, cooldown time.Duration) *fixture {
	t.Helper()
	clock := newClock()
	cp := &MemCheckpointer{}
	s, err := New(Options{Mode: mode, CooldownPeriod: cooldown, Checkpointer: cp, Now: clock.now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &fixture{t: t, s: s, clock: clock, cp: cp}
}

// eni adds an ENI with the given CIDRs.
func (f *fixture) eni(id string, dev int, cidrs ...string) {
	f.t.Helper()
	f.eniInfo(ENI{ID: id, DeviceNumber: dev, IsPrimary: dev == 0, RouteTableID: dev + 1}, cidrs...)
}

func (f *fixture) eniInfo(e ENI, cidrs ...string) {
	f.t.Helper()
	if err := f.s.AddENI(e); err != nil {
		f.t.Fatalf("AddENI(%s): %v", e.ID, err)
	}
	for _, c := range cidrs {
		if err := f.s.AddCIDR(e.ID, pfx(c)); err != nil {
			f.t.Fatalf("AddCIDR(%s, %s): %v", e.ID, c, err)
		}
	}
}

func (f *fixture) assign(i int) Assignment {
	f.t.Helper()
	a, err := f.s.Assign(podKey(i), podMeta(i))
	if err != nil {
		f.t.Fatalf("Assign(%s): %v", podKey(i), err)
	}
	checkInvariants(f.t, f.s)
	return a
}

func (f *fixture) unassign(i int) Assignment {
	f.t.Helper()
	a, err := f.s.Unassign(podKey(i))
	if err != nil {
		f.t.Fatalf("Unassign(%s): %v", podKey(i), err)
	}
	checkInvariants(f.t, f.s)
	return a
}

// checkInvariants recounts everything from the raw state and compares it
// with the counters and indexes the store maintains incrementally.
func checkInvariants(t *testing.T, s *Store) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("invariant: "+format, args...)
	}
	var sums [numModes]modeCounts
	excluded := 0
	for id, e := range s.enis {
		if e.info.ID != id {
			fail("ENI map key %s holds %s", id, e.info.ID)
		}
		var counts [numModes]modeCounts
		assigned, cooling := 0, 0
		for p, c := range e.cidrs {
			if c.prefix != p || c.eni != e || s.cidrs[p] != c {
				fail("CIDR %s wired wrongly", p)
			}
			a, cl := 0, 0
			for off, sl := range c.used {
				if sl.cidr != c || sl.off != off || sl.addr != addrAt(c.prefix, off) {
					fail("slot %d of %s wired wrongly", off, p)
				}
				switch {
				case sl.allocIdx >= 0 && sl.coolIdx < 0:
					a++
					if s.allocSlots[sl.allocIdx] != sl {
						fail("slot %s alloc index %d stale", sl.addr, sl.allocIdx)
					}
				case sl.coolIdx >= 0 && sl.allocIdx < 0:
					cl++
					if s.coolSlots[sl.coolIdx] != sl {
						fail("slot %s cool index %d stale", sl.addr, sl.coolIdx)
					}
				case sl.allocIdx < 0 && sl.coolIdx < 0 && s.reserved[sl.addr].sl == sl:
					a++ // reserved for another store's pending allocation
				default:
					fail("slot %s neither assigned nor cooling (alloc %d cool %d)", sl.addr, sl.allocIdx, sl.coolIdx)
				}
			}
			if a != c.assigned || cl != c.cooling {
				fail("CIDR %s counts assigned %d cooling %d, recount %d %d", p, c.assigned, c.cooling, a, cl)
			}
			if c.available() < 0 {
				fail("CIDR %s available %d", p, c.available())
			}
			if c.size <= 4096 {
				inHeap := map[uint64]bool{}
				for _, off := range c.free {
					if off >= c.next {
						fail("CIDR %s free offset %d >= next %d", p, off, c.next)
					}
					inHeap[off] = true
				}
				for off := uint64(0); off < c.next; off++ {
					if c.used[off] == nil && !inHeap[off] {
						fail("CIDR %s free offset %d lost", p, off)
					}
				}
			}
			if (c.available() > 0) != (c.heapIdx >= 0) {
				fail("CIDR %s available %d but heap index %d", p, c.available(), c.heapIdx)
			}
			if c.heapIdx >= 0 && e.cand[c.class].items[c.heapIdx] != c {
				fail("CIDR %s heap index stale", p)
			}
			mc := &counts[c.class]
			mc.total += int(c.size)
			mc.assigned += a
			mc.cooling += cl
			mc.cidrs++
			mc.freeCIDRs += b2i(a == 0 && cl == 0)
			assigned += a
			cooling += cl
		}
		if counts != e.counts || assigned != e.assigned || cooling != e.cooling {
			fail("ENI %s counts %+v/%d/%d, recount %+v/%d/%d", id, e.counts, e.assigned, e.cooling, counts, assigned, cooling)
		}
		for m := range Mode(numModes) {
			checkHeap(t, &e.cand[m], fmt.Sprintf("ENI %s %s CIDR heap", id, m))
			want := !e.info.ExcludedForPods && e.cand[m].len() > 0
			if want != (e.heapIdx[m] >= 0) {
				fail("ENI %s membership in %s heap: want %v, index %d", id, m, want, e.heapIdx[m])
			}
			if e.heapIdx[m] >= 0 && s.cand[m].items[e.heapIdx[m]] != e {
				fail("ENI %s heap index stale", id)
			}
			if !e.info.ExcludedForPods {
				sums[m].add(counts[m], 1)
			}
		}
		excluded += b2i(e.info.ExcludedForPods)
	}
	if sums != s.sums || excluded != s.excluded {
		fail("store sums %+v excluded %d, recount %+v %d", s.sums, s.excluded, sums, excluded)
	}
	for m := range Mode(numModes) {
		checkHeap(t, &s.cand[m], fmt.Sprintf("store %s ENI heap", m))
	}
	if len(s.allocs) != len(s.allocSlots) || len(s.allocs) != len(s.byKey) {
		fail("allocs %d, slots %d, keys %d", len(s.allocs), len(s.allocSlots), len(s.byKey))
	}
	addrs := map[netip.Addr]Key{}
	pending := 0
	for i, a := range s.allocs {
		sl := s.allocSlots[i]
		if sl.allocIdx != i || s.byKey[a.Key] != sl || sl.addr != a.Addr {
			fail("allocation %d (%s) wired wrongly", i, a.Key)
		}
		if k, dup := addrs[a.Addr]; dup {
			fail("address %s held by %s and %s", a.Addr, k, a.Key)
		}
		addrs[a.Addr] = a.Key
		if sl.cidr == nil {
			pending++
			if s.pending[a.Addr] != sl {
				fail("pending %s not indexed", a.Addr)
			}
			if c := s.cidrOf(a.Addr); c != nil {
				fail("pending %s lies in known CIDR %s", a.Addr, c.prefix)
			}
		}
	}
	pendingCool := 0
	for _, sl := range s.coolSlots {
		if sl.cidr == nil {
			pendingCool++
			if s.pending[sl.addr] != sl {
				fail("pending cooling %s not indexed", sl.addr)
			}
			if c := s.cidrOf(sl.addr); c != nil {
				fail("pending cooling %s lies in known CIDR %s", sl.addr, c.prefix)
			}
		}
	}
	if pending+pendingCool != len(s.pending) || pendingCool != s.pendingCool {
		fail("pending recount %d+%d, index %d (cooling %d)", pending, pendingCool, len(s.pending), s.pendingCool)
	}
	if len(s.cool) != len(s.coolSlots) {
		fail("cool %d slots %d", len(s.cool), len(s.coolSlots))
	}
	for i, c := range s.cool {
		sl := s.coolSlots[i]
		if sl.coolIdx != i || sl.addr != c.Addr {
			fail("cooling %d (%s) wired wrongly", i, c.Addr)
		}
		if i > 0 && c.UnassignedAt.Before(s.cool[(i-1)/2].UnassignedAt) {
			fail("cooling heap order broken at %d", i)
		}
		if _, dup := addrs[c.Addr]; dup {
			fail("address %s both assigned and cooling", c.Addr)
		}
	}
	// After a failed write the file may lag memory until the next good one.
	if mc, ok := s.cp.(*MemCheckpointer); ok && mc.file != nil && !s.unpersisted {
		got := slices.Clone(mc.file.Allocations)
		want := slices.Clone(s.allocs)
		sortAllocations(got)
		sortAllocations(want)
		if !slices.EqualFunc(got, want, func(a, b Allocation) bool {
			return a.Key == b.Key && a.Addr == b.Addr && a.AssignedAt.Equal(b.AssignedAt) && a.Meta == b.Meta
		}) {
			fail("checkpoint holds %v, store %v", got, want)
		}
	}
}

func checkHeap[T any](t *testing.T, h *iheap[T], name string) {
	t.Helper()
	for i := 1; i < len(h.items); i++ {
		if h.less(h.items[i], h.items[(i-1)/2]) {
			t.Fatalf("invariant: %s order broken at %d", name, i)
		}
	}
}
