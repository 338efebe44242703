package datastore

import (
	"errors"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRestoreStaleAndUnknown(t *testing.T) {
	path := copyTestdata(t, "upstream-ipam.json")
	clock := newClock()
	s := newFileStore(t, path, ModeSecondaryIPv4, clock)
	upstreamNode(t, s)
	// 10.0.2.0/28 is not known yet (IMDS lags): its pods must not be lost.
	if _, err := s.RemoveCIDR("eni-1", pfx("10.0.2.0/28"), false); err != nil {
		t.Fatal(err)
	}
	res, err := s.Load(func(a Allocation) bool { return a.Meta.K8sPodName != "web-1" })
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, s)
	names := func(as []Allocation) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.Addr.String())
		}
		slices.Sort(out)
		return out
	}
	if got := names(res.Stale); !slices.Equal(got, []string{"10.0.1.23"}) {
		t.Fatalf("stale: %v", got)
	}
	if got := names(res.Unknown); !slices.Equal(got, []string{"10.0.2.5", "10.0.2.6"}) {
		t.Fatalf("unknown: %v", got)
	}
	if got := names(res.Restored); !slices.Equal(got, []string{"10.0.1.40"}) {
		t.Fatalf("restored: %v", got)
	}
	if st := s.Stats(); st.Pods != 3 || st.Pending != 2 || st.AssignedIPs != 1 {
		t.Fatalf("stats: %+v", st)
	}
	// Pending entries stay in the checkpoint: a second restart keeps them.
	checkUpstreamShape(t, path, 3)
	// Once the CIDR is known again they are adopted with their ENI.
	if err := s.AddCIDR("eni-1", pfx("10.0.2.0/28")); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, s)
	a, ok := s.Lookup(Key{"aws-cni", "77aa88bb99cc00dd11ee22ff33aa44bb55cc66dd77ee88ff99aa00bb11cc22dd", "eth0"})
	if !ok || a.ENIID != "eni-1" || a.CIDR != pfx("10.0.2.0/28") || a.Meta.InterfacesCount != 2 {
		t.Fatalf("adopted allocation: %+v %v", a, ok)
	}
	if st := s.Stats(); st.Pending != 0 {
		t.Fatalf("pending after adoption: %+v", st)
	}
	if err := s.SetMode(ModePrefixIPv4); err != nil {
		t.Fatal(err)
	}
	if a, err := s.Assign(podKey(1), podMeta(1)); err != nil || a.Addr != ip("10.0.2.0") {
		t.Fatalf("assign next to adopted pods: %+v %v", a, err)
	}
	if a, err := s.Assign(podKey(2), podMeta(2)); err != nil || a.Addr != ip("10.0.2.1") {
		t.Fatalf("assign next to adopted pods: %+v %v", a, err)
	}
	if a, err := s.Assign(podKey(3), podMeta(3)); err != nil || a.Addr != ip("10.0.2.2") {
		t.Fatalf("assign next to adopted pods: %+v %v", a, err)
	}
	if a, err := s.Assign(podKey(4), podMeta(4)); err != nil || a.Addr != ip("10.0.2.3") {
		t.Fatalf("assign next to adopted pods: %+v %v", a, err)
	}
	if a, err := s.Assign(podKey(5), podMeta(5)); err != nil || a.Addr != ip("10.0.2.4") {
		t.Fatalf("assign next to adopted pods: %+v %v", a, err)
	}
	if a, err := s.Assign(podKey(6), podMeta(6)); err != nil || a.Addr != ip("10.0.2.7") {
		t.Fatalf("restored 10.0.2.5 and .6 must be skipped: %+v %v", a, err)
	}
	checkInvariants(t, s)
}

func TestDropPendingAndDeleteOfPending(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	f.eni("eni-a", 0, "10.0.0.11/32")
	file := File{Version: CheckpointVersion, Allocations: []Allocation{
		{Key: podKey(1), Addr: ip("10.0.9.1"), Meta: podMeta(1)},
		{Key: podKey(2), Addr: ip("10.0.9.2"), Meta: podMeta(2)},
		{Key: podKey(3), Addr: ip("10.0.9.3"), Meta: podMeta(3)},
	}}
	if _, err := f.s.Restore(file, nil); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, f.s)
	// DEL of a pending pod succeeds (its ip rules must go) and frees nothing.
	a := f.unassign(1)
	if a.Addr != ip("10.0.9.1") || a.ENIID != "" {
		t.Fatalf("DEL of pending: %+v", a)
	}
	// ADD of the same key as a pending entry re-assigns from the pool.
	if a := f.assign(2); a.Addr != ip("10.0.0.11") {
		t.Fatalf("ADD over a pending key: %+v", a)
	}
	dropped, err := f.s.DropPending(nil)
	if err != nil || len(dropped) != 1 || dropped[0].Key != podKey(3) {
		t.Fatalf("DropPending: %+v %v", dropped, err)
	}
	checkInvariants(t, f.s)
	if st := f.s.Stats(); st.Pods != 1 || st.Pending != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestLoadMissingFileIsFreshNode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	s := newFileStore(t, path, ModeSecondaryIPv4, newClock())
	res, err := s.Load(nil)
	if err != nil || len(res.Restored)+len(res.Stale)+len(res.Unknown) != 0 {
		t.Fatalf("fresh node: %+v %v", res, err)
	}
	if _, err := NewFileCheckpointer(path).Read(); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("Read of a missing file: %v", err)
	}
	s2, _ := New(Options{})
	if _, err := s2.Load(nil); err != nil {
		t.Fatalf("Load without checkpointer: %v", err)
	}
}

func TestRestoreRefusesBusyStore(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 0)
	f.eni("eni-a", 0, "10.0.0.11/32", "10.0.0.12/32")
	f.assign(1)
	_, err := f.s.Restore(File{Version: CheckpointVersion, Allocations: []Allocation{{Key: podKey(2), Addr: ip("10.0.0.12")}}}, nil)
	if !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("restore into a busy store: %v", err)
	}
	if _, err := f.s.Restore(File{Version: "x"}, nil); !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), `"x"`) {
		t.Fatalf("restore of a wrong version: %v", err)
	}
	checkInvariants(t, f.s)
}

// A cooling address whose CIDR is unknown at restore keeps cooling until the
// CIDR is back, and is persisted meanwhile.
func TestRestorePendingCooling(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	f.eni("eni-a", 0, "10.0.0.11/32")
	now := f.clock.now()
	file := File{Version: CheckpointVersion,
		Allocations: []Allocation{{Key: podKey(1), Addr: ip("10.0.0.11"), AssignedAt: now}},
		Cooling: []Cooling{
			{Addr: ip("10.0.0.12"), UnassignedAt: now.Add(-10 * time.Second)}, // CIDR not known yet
			{Addr: ip("10.0.0.13"), UnassignedAt: now.Add(-40 * time.Second)}, // expired
			{Addr: ip("10.0.0.11"), UnassignedAt: now.Add(-5 * time.Second)},  // assigned again since
		}}
	if _, err := f.s.Restore(file, nil); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, f.s)
	if st := f.s.Stats(); st.Pending != 0 || st.CoolingIPs != 0 || st.Pods != 1 {
		t.Fatalf("stats: %+v", st)
	}
	if got := f.cp.file.Cooling; len(got) != 1 || got[0].Addr != ip("10.0.0.12") {
		t.Fatalf("pending cooling not persisted: %+v", got)
	}
	if err := f.s.AddCIDR("eni-a", pfx("10.0.0.12/32")); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, f.s)
	if _, err := f.s.Assign(podKey(2), podMeta(2)); !errors.Is(err, ErrNoAvailableAddress) {
		t.Fatalf("a restored cooling address was handed out: %v", err)
	}
	f.clock.advance(20 * time.Second)
	if a := f.assign(2); a.Addr != ip("10.0.0.12") {
		t.Fatalf("after cooldown: %+v", a)
	}

	// Expiry while still pending, and DropPending of a pending cooling entry.
	g := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	g.eni("eni-a", 0, "10.0.0.11/32")
	if _, err := g.s.Restore(File{Version: CheckpointVersion, Cooling: []Cooling{
		{Addr: ip("10.0.0.12"), UnassignedAt: g.clock.now()}, {Addr: ip("10.0.0.13"), UnassignedAt: g.clock.now()},
	}}, nil); err != nil {
		t.Fatal(err)
	}
	g.clock.advance(30 * time.Second)
	g.s.Stats()
	checkInvariants(t, g.s)
	if len(g.s.pending) != 0 {
		t.Fatalf("expired pending cooling entries kept: %d", len(g.s.pending))
	}
}
