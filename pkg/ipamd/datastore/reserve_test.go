package datastore

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

// TestAdoptReservesAnUntakeableAddressInABusyPrefix: another store's
// pending allocation lies in a prefix of this store whose key holds
// another address here, and other pods use the prefix. The store keeps
// the address from new pods (counted as assigned) while the allocation is
// pending elsewhere, has it cool once the other store has it cooling, and
// a forced removal of the prefix leaves consistent counters.
func TestAdoptReservesAnUntakeableAddressInABusyPrefix(t *testing.T) {
	f := newFixture(t, ModePrefixIPv4, 30*time.Second)
	f.eni("eni-b", 0, "10.0.1.0/28")
	f.assign(1) // 10.0.1.0: the multi-NIC pod's address here
	f.assign(2) // 10.0.1.1: the prefix is busy
	moved := netip.MustParseAddr("10.0.1.5")
	pending := Allocation{Key: podKey(1), Addr: moved, AssignedAt: time.Now(), Meta: podMeta(1)}
	got, err := f.s.Adopt([]Allocation{pending}, nil)
	if err != nil || len(got.Refused) != 1 || got.Refused[0].Dropped {
		t.Fatalf("Adopt: %+v %v, want the allocation refused and the prefix kept", got, err)
	}
	checkInvariants(t, f.s)
	if st := f.s.Stats(); st.AssignedIPs != 3 || st.AvailableIPs != 13 {
		t.Fatalf("after the reservation: %+v, want 3 assigned", st)
	}
	for i := 3; i < 16; i++ {
		if a := f.assign(i); a.Addr == moved {
			t.Fatalf("pod %d got %s, reserved for the other store's pending pod", i, a.Addr)
		}
	}
	if _, err := f.s.Assign(podKey(16), podMeta(16)); !errors.Is(err, ErrNoAvailableAddress) {
		t.Fatalf("pod 16: %v, want none available", err)
	}
	// Still pending elsewhere: the reservation stays.
	if _, err := f.s.Adopt([]Allocation{pending}, nil); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, f.s)
	// The pod's DEL: the other store has the address cooling.
	cl := Cooling{Addr: moved, UnassignedAt: time.Now()}
	if got, err := f.s.Adopt(nil, []Cooling{cl}); err != nil || len(got.Cooling) != 1 {
		t.Fatalf("Adopt after the DEL: %+v %v, want the address cooling here", got, err)
	}
	checkInvariants(t, f.s)
	if st := f.s.Stats(); st.AssignedIPs != 15 || st.CoolingIPs != 1 {
		t.Fatalf("after the DEL: %+v, want 15 assigned and the address cooling", st)
	}

	// Released with no cooldown left on the other store: free again.
	h := newFixture(t, ModePrefixIPv4, 30*time.Second)
	h.eni("eni-b", 0, "10.0.1.0/28")
	h.assign(1)
	h.assign(2)
	if _, err := h.s.Adopt([]Allocation{pending}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.Adopt(nil, nil); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, h.s)
	if st := h.s.Stats(); st.AssignedIPs != 2 || st.AvailableIPs != 14 {
		t.Fatalf("after the release elsewhere: %+v, want the address free again", st)
	}

	// A forced removal of a prefix holding a reservation.
	g := newFixture(t, ModePrefixIPv4, 30*time.Second)
	g.eni("eni-b", 0, "10.0.1.0/28")
	g.assign(1)
	g.assign(2)
	if _, err := g.s.Adopt([]Allocation{pending}, nil); err != nil {
		t.Fatal(err)
	}
	if ev, err := g.s.RemoveCIDR("eni-b", pfx("10.0.1.0/28"), true); err != nil || len(ev) != 2 {
		t.Fatalf("forced removal: %+v %v, want the 2 pods evicted", ev, err)
	}
	checkInvariants(t, g.s)
	if st := g.s.Stats(); st.AssignedIPs != 0 || st.TotalIPs != 0 {
		t.Fatalf("after the removal: %+v", st)
	}
	// No longer pending elsewhere (released without cooldown): nothing
	// left to end.
	if _, err := g.s.Adopt(nil, nil); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, g.s)
}
