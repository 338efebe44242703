package datastore

import (
	"errors"
	"testing"
	"time"
)

// TestRestoreClampsFutureTimestamps: a cooldown stamped in the future
// (clock set back, hand-edited file) lasts one period from the restore,
// not until that date; a future allocation time becomes now.
func TestRestoreClampsFutureTimestamps(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	f.eni("eni-a", 0, "10.0.0.11/32", "10.0.0.12/32", "10.0.0.13/32")
	now := f.clock.now()
	file := File{Version: CheckpointVersion,
		Allocations: []Allocation{{Key: podKey(1), Addr: ip("10.0.0.11"), AssignedAt: now.Add(24 * time.Hour), Meta: podMeta(1)}},
		Cooling:     []Cooling{{Addr: ip("10.0.0.12"), UnassignedAt: now.Add(365 * 24 * time.Hour)}},
	}
	res, err := f.s.Restore(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Clamped != 2 {
		t.Errorf("Clamped = %d, want 2", res.Clamped)
	}
	if a, _ := f.s.Lookup(podKey(1)); !a.AssignedAt.Equal(now) {
		t.Errorf("allocation time %s, want now (%s)", a.AssignedAt, now)
	}
	if end, ok := f.s.NextCoolingEnd(); !ok || !end.Equal(now.Add(30*time.Second)) {
		t.Errorf("cooldown ends %s (%v), want one period from now", end, ok)
	}
	f.assign(2) // 10.0.0.13, the only free one
	f.clock.advance(30 * time.Second)
	if a := f.assign(3); a.Addr != ip("10.0.0.12") {
		t.Errorf("after one period the clamped address is handed out: got %s", a.Addr)
	}
	checkInvariants(t, f.s)
}

// TestRestoreDropsKeyLessAllocations: an allocation with an empty key
// field can never be released by a DEL; it is dropped (even when several
// share the empty key), and its address is free again.
func TestRestoreDropsKeyLessAllocations(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 0)
	f.eni("eni-a", 0, "10.0.0.11/32", "10.0.0.12/32", "10.0.0.13/32")
	file := File{Version: CheckpointVersion, Allocations: []Allocation{
		{Key: Key{}, Addr: ip("10.0.0.11")},
		{Key: Key{}, Addr: ip("10.0.0.12")},
		{Key: Key{NetworkName: "aws-cni", ContainerID: "c", IfName: ""}, Addr: ip("10.0.0.13")},
		{Key: podKey(1), Addr: ip("10.0.0.14")},
	}}
	enc, err := EncodeFile(file)
	if err != nil {
		t.Fatal(err)
	}
	decoded, err := DecodeFile("test", enc)
	if err != nil {
		t.Fatalf("a file with repeated empty keys must decode: %v", err)
	}
	res, err := f.s.Restore(decoded, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.KeyLess) != 3 || len(res.Restored)+len(res.Unknown) != 1 {
		t.Errorf("KeyLess %v, Restored %v, Unknown %v; want 3 dropped and 1 kept", res.KeyLess, res.Restored, res.Unknown)
	}
	if st := f.s.Stats(); st.AssignedIPs != 0 || st.AvailableIPs != 3 {
		t.Errorf("stats %+v: the dropped addresses must be free", st)
	}
	checkInvariants(t, f.s)
}

// TestUnassignAddrOnlyWhatWasSeen: a release decided on an older view does
// not take an address the key holds since, nor a migrated entry.
func TestUnassignAddrOnlyWhatWasSeen(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 0)
	f.eni("eni-a", 0, "10.0.0.11/32", "10.0.0.12/32")
	a := f.assign(1)
	if _, err := f.s.UnassignAddr(podKey(1), ip("10.0.0.12")); !errors.Is(err, ErrUnknownPod) {
		t.Errorf("UnassignAddr of another address: %v, want ErrUnknownPod", err)
	}
	if _, ok := f.s.Lookup(podKey(1)); !ok {
		t.Fatal("the key lost its address")
	}
	got, err := f.s.UnassignAddr(podKey(1), a.Addr)
	if err != nil || got.Addr != a.Addr {
		t.Errorf("UnassignAddr of the held address: %+v %v", got, err)
	}
	checkInvariants(t, f.s)
}

// TestLoadTellsUnreadableFromUnwritable: only a checkpoint that cannot be
// read or accepted is ErrUnreadable (ipamd moves it aside); a good one
// whose rewrite fails is not.
func TestLoadTellsUnreadableFromUnwritable(t *testing.T) {
	cp := &MemCheckpointer{}
	if err := cp.Write(File{Version: CheckpointVersion, Allocations: []Allocation{{Key: podKey(1), Addr: ip("10.0.0.11")}}}); err != nil {
		t.Fatal(err)
	}
	cp.SetErr(errors.New("read-only file system"))
	s, err := New(Options{Checkpointer: cp})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(nil); err == nil || errors.Is(err, ErrUnreadable) || !errors.Is(err, ErrCheckpoint) {
		t.Errorf("Load with a failing write: %v, want a checkpoint error that is not ErrUnreadable", err)
	}
	bad := &MemCheckpointer{}
	if err := bad.Write(File{Version: "vpc-cni-ipam/9"}); err != nil {
		t.Fatal(err)
	}
	s2, err := New(Options{Checkpointer: bad})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Load(nil); !errors.Is(err, ErrUnreadable) {
		t.Errorf("Load of a wrong version: %v, want ErrUnreadable", err)
	}
}
