package datastore

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// What a failed checkpoint write keeps and undoes, one change at a time
// (commit_test.go has the batched case).

// A failing checkpointer leaves the store exactly as it was after Assign.
func TestCheckpointFailureUndoesAssign(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	f.eni("eni-a", 0, "10.0.0.11/32", "10.0.0.12/32")
	f.assign(1)
	before := f.s.Snapshot()
	stBefore := f.s.Stats()
	f.cp.SetErr(errors.New("disk full"))

	if _, err := f.s.Assign(podKey(2), podMeta(2)); !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Assign with a failing checkpoint: %v", err)
	}
	checkInvariants(t, f.s)
	if st := f.s.Stats(); st != stBefore {
		t.Fatalf("stats changed: %+v -> %+v", stBefore, st)
	}
	if after := f.s.Snapshot(); !snapshotsEqual(before, after) {
		t.Fatalf("store changed:\n%+v\n%+v", before, after)
	}
	if _, ok := f.s.Lookup(podKey(2)); ok {
		t.Fatal("failed ADD left the key assigned")
	}
	f.cp.SetErr(nil)
	// The undone ADD did not disturb the choice: the same address comes next.
	if a := f.assign(2); a.Addr != ip("10.0.0.12") {
		t.Fatalf("ADD after recovery: %+v", a)
	}
	f.unassign(1)
}

// A failed checkpoint write on Unassign keeps the release: the address
// cools down, the key is gone, and the next successful write persists it.
// A restart from the stale file in between drops the dead key.
func TestCheckpointFailureKeepsUnassign(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	f.eni("eni-a", 0, "10.0.0.11/32", "10.0.0.12/32", "10.0.0.13/32")
	held := f.assign(1)
	f.assign(2)
	stale, err := f.cp.Read()
	if err != nil {
		t.Fatal(err)
	}

	f.cp.SetErr(errors.New("disk full"))
	got, err := f.s.Unassign(podKey(1))
	if !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Unassign with a failing checkpoint: err %v, want ErrCheckpoint", err)
	}
	if got.Addr != held.Addr || got.Key != podKey(1) || got.ENIID != "eni-a" {
		t.Fatalf("Unassign with a failing checkpoint returned %+v, want what the key held (%+v)", got, held)
	}
	checkInvariants(t, f.s)
	if _, ok := f.s.Lookup(podKey(1)); ok {
		t.Fatal("released key still assigned after the failed write")
	}
	if st := f.s.Stats(); st.Pods != 1 || st.CoolingIPs != 1 {
		t.Fatalf("after the failed write: %+v, want 1 pod and the released address cooling", st)
	}
	if _, err := f.s.Unassign(podKey(1)); !errors.Is(err, ErrUnknownPod) {
		t.Fatalf("repeated DEL: %v, want ErrUnknownPod", err)
	}

	// The stale file (written before the failure) still names the key; a
	// restart that finds the pod dead drops it.
	r := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	r.eni("eni-a", 0, "10.0.0.11/32", "10.0.0.12/32", "10.0.0.13/32")
	res, err := r.s.Restore(stale, func(a Allocation) bool { return a.Key != podKey(1) })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Stale) != 1 || res.Stale[0].Key != podKey(1) || len(res.Restored) != 1 {
		t.Fatalf("restore from the stale file: %+v, want key 1 stale and key 2 restored", res)
	}
	if _, ok := r.s.Lookup(podKey(1)); ok {
		t.Fatal("restore kept the dead key")
	}
	if f2, _ := r.cp.Read(); fileHasKey(f2, podKey(1)) {
		t.Fatalf("checkpoint after restore still names the dead key: %+v", f2)
	}

	// Back in the first store: the next successful write persists the release.
	f.cp.SetErr(nil)
	f.assign(3)
	after, err := f.cp.Read()
	if err != nil {
		t.Fatal(err)
	}
	if fileHasKey(after, podKey(1)) {
		t.Fatalf("checkpoint after the next write still names the released key: %+v", after)
	}
	cooling := false
	for _, c := range after.Cooling {
		cooling = cooling || c.Addr == held.Addr
	}
	if !cooling {
		t.Fatalf("checkpoint after the next write does not list %s as cooling: %+v", held.Addr, after.Cooling)
	}
}

func fileHasKey(f File, k Key) bool {
	for _, a := range f.Allocations {
		if a.Key == k {
			return true
		}
	}
	return false
}

// A restore whose write-back fails keeps what it restored (the file it
// came from still says so) and the next successful write persists it.
func TestCheckpointFailureKeepsRestore(t *testing.T) {
	g := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	g.eni("eni-a", 0, "10.0.0.11/32", "10.0.0.12/32")
	g.cp.SetErr(errors.New("read-only file system"))
	res, err := g.s.Restore(File{Version: CheckpointVersion,
		Allocations: []Allocation{{Key: podKey(1), Addr: ip("10.0.0.11")}, {Key: podKey(2), Addr: ip("10.0.9.9")}},
		Cooling:     []Cooling{{Addr: ip("10.0.0.12"), UnassignedAt: g.clock.now()}}}, nil)
	if !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("restore with a failing checkpoint: %v", err)
	}
	checkInvariants(t, g.s)
	if st := g.s.Stats(); st.Pods != 2 || st.CoolingIPs != 1 || st.AvailableIPs != 0 || len(res.Restored) != 1 || len(res.Unknown) != 1 {
		t.Fatalf("restore with a failing write: %+v %+v", st, res)
	}
	if !g.s.Unpersisted() {
		t.Error("the store does not know its file lags")
	}
	g.cp.SetErr(nil)
	if err := g.s.Persist(); err != nil {
		t.Fatal(err)
	}
	f, err := g.cp.Read()
	if err != nil || len(f.Allocations) != 2 || len(f.Cooling) != 1 || g.s.Unpersisted() {
		t.Errorf("after Persist: %+v %v", f, err)
	}
}

func snapshotsEqual(a, b []ENIInfo) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}
