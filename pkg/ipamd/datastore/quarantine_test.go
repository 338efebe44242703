package datastore

import (
	"errors"
	"testing"
	"time"
)

// TestEvictedAddressGoesBackToItsPod: a forced RemoveCIDR evicts a pod
// (EC2 unassigned the address); when EC2 lists the address on the node
// again, the pod, which has had no DEL, holds it again and a new pod gets
// another. Before, the store forgot the pod and handed its address out.
func TestEvictedAddressGoesBackToItsPod(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	f.eni("eni-a", 0, "10.0.0.10/32", "10.0.0.11/32")
	f.eni("eni-b", 1)
	victim := f.assign(1) // 10.0.0.10
	ev, err := f.s.RemoveCIDR("eni-a", pfx("10.0.0.10/32"), true)
	if err != nil || len(ev) != 1 || ev[0].Key != podKey(1) || ev[0].ENIID != "eni-a" {
		t.Fatalf("forced removal: %+v %v", ev, err)
	}
	checkInvariants(t, f.s)
	if st := f.s.Stats(); st.Pods != 1 || st.Pending != 1 || st.AssignedIPs != 0 || st.TotalIPs != 1 {
		t.Fatalf("after the eviction: %+v", st)
	}
	// EC2 gives the address to another ENI of the node.
	if err := f.s.AddCIDR("eni-b", pfx("10.0.0.10/32")); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, f.s)
	if a, ok := f.s.Lookup(podKey(1)); !ok || a.Addr != victim.Addr || a.ENIID != "eni-b" {
		t.Fatalf("evicted pod after its address came back: %+v %v, want %s on eni-b", a, ok, victim.Addr)
	}
	if a := f.assign(2); a.Addr == victim.Addr {
		t.Fatalf("a new pod got %s, which the evicted pod still holds", a.Addr)
	}
	if _, err := f.s.Assign(podKey(3), podMeta(3)); !errors.Is(err, ErrNoAvailableAddress) {
		t.Fatalf("a third pod: %v, want no address (the evicted pod's is not free)", err)
	}
}

// TestDELOfEvictedPodReleasesIt: the DEL of an evicted pod succeeds with
// what it held; the address then cools down, even once it is back on the
// node, and a second DEL finds nothing.
func TestDELOfEvictedPodReleasesIt(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	f.eni("eni-a", 0, "10.0.0.10/32")
	victim := f.assign(1)
	if _, err := f.s.RemoveENI("eni-a", true); err != nil {
		t.Fatal(err)
	}
	got, err := f.s.Unassign(podKey(1))
	if err != nil || got.Addr != victim.Addr || got.ENIID != "" {
		t.Fatalf("DEL of the evicted pod: %+v %v, want %s released", got, err, victim.Addr)
	}
	checkInvariants(t, f.s)
	if _, err := f.s.Unassign(podKey(1)); !errors.Is(err, ErrUnknownPod) {
		t.Fatalf("second DEL: %v, want ErrUnknownPod", err)
	}
	if st := f.s.Stats(); st.Pods != 0 || st.Pending != 0 {
		t.Fatalf("after the DEL: %+v", st)
	}
	f.eni("eni-b", 1, "10.0.0.10/32")
	if _, err := f.s.Assign(podKey(2), podMeta(2)); !errors.Is(err, ErrNoAvailableAddress) {
		t.Fatalf("ADD within the cooldown of the released address: %v, want none available", err)
	}
	f.clock.advance(31 * time.Second)
	if a := f.assign(2); a.Addr != victim.Addr {
		t.Fatalf("ADD after the cooldown got %s, want %s", a.Addr, victim.Addr)
	}
}

// TestEvictedPodSurvivesRestart: the checkpoint keeps an evicted pod as
// the allocation it was, so a restart restores it pending and the address
// still goes back to it, not to a new pod.
func TestEvictedPodSurvivesRestart(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	f.eni("eni-a", 0, "10.0.0.10/32", "10.0.0.11/32")
	victim := f.assign(1)
	if _, err := f.s.RemoveCIDR("eni-a", pfx("10.0.0.10/32"), true); err != nil {
		t.Fatal(err)
	}
	file, err := f.cp.Read()
	if err != nil {
		t.Fatal(err)
	}
	g := &fixture{t: t, clock: f.clock, cp: &MemCheckpointer{}}
	if g.s, err = New(Options{Mode: ModeSecondaryIPv4, CooldownPeriod: 30 * time.Second, Checkpointer: g.cp, Now: g.clock.now}); err != nil {
		t.Fatal(err)
	}
	g.eni("eni-a", 0, "10.0.0.11/32")
	res, err := g.s.Restore(file, nil)
	if err != nil || len(res.Unknown) != 1 || res.Unknown[0].Key != podKey(1) {
		t.Fatalf("restore: %+v %v, want the evicted pod pending", res, err)
	}
	g.eni("eni-b", 1, "10.0.0.10/32")
	if a, ok := g.s.Lookup(podKey(1)); !ok || a.Addr != victim.Addr || a.ENIID != "eni-b" {
		t.Fatalf("evicted pod after restart and its address's return: %+v %v", a, ok)
	}
	if a := g.assign(2); a.Addr == victim.Addr {
		t.Fatalf("a new pod got %s after the restart", a.Addr)
	}
}

// TestDropPendingKeepsWhatKeepAccepts: DropPending forgets the pending
// allocations keep rejects and keeps the others pending, in memory and in
// the checkpoint.
func TestDropPendingKeepsWhatKeepAccepts(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	f.eni("eni-a", 0, "10.0.0.10/32", "10.0.0.11/32")
	f.assign(1)
	f.assign(2)
	if _, err := f.s.RemoveENI("eni-a", true); err != nil {
		t.Fatal(err)
	}
	dropped, err := f.s.DropPending(func(a Allocation) bool { return a.Key == podKey(1) })
	if err != nil || len(dropped) != 1 || dropped[0].Key != podKey(2) {
		t.Fatalf("DropPending: %+v %v, want only %s dropped", dropped, err, podKey(2))
	}
	checkInvariants(t, f.s)
	if p := f.s.Pending(); len(p) != 1 || p[0].Key != podKey(1) {
		t.Fatalf("pending after the drop: %+v", p)
	}
	file, err := f.cp.Read()
	if err != nil || len(file.Allocations) != 1 || file.Allocations[0].Key != podKey(1) {
		t.Fatalf("checkpoint after the drop: %+v %v", file.Allocations, err)
	}
}

// TestReadoptedListsPodsBackInACIDR: Readopted names, once, the pending
// allocations AddCIDR placed that are still held, with their new ENI.
func TestReadoptedListsPodsBackInACIDR(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	f.eni("eni-a", 0, "10.0.0.10/32", "10.0.0.11/32")
	f.eni("eni-b", 1)
	f.assign(1) // 10.0.0.10
	f.assign(2) // 10.0.0.11
	if _, err := f.s.RemoveENI("eni-a", true); err != nil {
		t.Fatal(err)
	}
	if got := f.s.Readopted(); len(got) != 0 {
		t.Fatalf("before any CIDR came back: %+v", got)
	}
	f.unassign(2) // its DEL: released, cooling
	if err := f.s.AddCIDR("eni-b", pfx("10.0.0.10/32")); err != nil {
		t.Fatal(err)
	}
	if err := f.s.AddCIDR("eni-b", pfx("10.0.0.11/32")); err != nil {
		t.Fatal(err)
	}
	got := f.s.Readopted()
	if len(got) != 1 || got[0].Key != podKey(1) || got[0].ENIID != "eni-b" || got[0].RouteTableID != 2 {
		t.Fatalf("Readopted: %+v, want only %s on eni-b (table 2)", got, podKey(1))
	}
	if got := f.s.Readopted(); len(got) != 0 {
		t.Fatalf("a second Readopted: %+v, want nothing", got)
	}
	checkInvariants(t, f.s)
}

// TestDropPendingKeepsACoolingAddress: a quarantined pod's DEL puts its
// address into the cooldown, still pending; the pending drop must not cut
// that cooldown short, or the address goes to a new pod at once when EC2
// hands it back while peers and conntrack may still name the deleted pod.
// Before, DropPending forgot it and the next ADD got it.
func TestDropPendingKeepsACoolingAddress(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 10*time.Minute)
	f.eni("eni-a", 0, "10.0.0.10/32")
	f.eni("eni-b", 1)
	victim := f.assign(1)
	if _, err := f.s.RemoveENI("eni-a", true); err != nil {
		t.Fatal(err)
	}
	f.unassign(1)
	f.clock.advance(5 * time.Minute)
	if _, err := f.s.DropPending(nil); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, f.s)
	if err := f.s.AddCIDR("eni-b", pfx("10.0.0.10/32")); err != nil {
		t.Fatal(err)
	}
	if a, err := f.s.Assign(podKey(2), podMeta(2)); err == nil {
		t.Fatalf("a new pod got %s 5 minutes into its 10-minute cooldown", a.Addr)
	} else if !errors.Is(err, ErrNoAvailableAddress) {
		t.Fatal(err)
	}
	if file, err := f.cp.Read(); err != nil || len(file.Cooling) != 1 || file.Cooling[0].Addr != victim.Addr {
		t.Fatalf("checkpoint's cooling addresses: %+v %v, want %s", file.Cooling, err, victim.Addr)
	}
	f.clock.advance(5 * time.Minute)
	if a := f.assign(2); a.Addr != victim.Addr {
		t.Fatalf("after the cooldown: %+v, want %s", a, victim.Addr)
	}
}
