package datastore

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// copyTestdata copies a testdata file into a temporary directory and
// returns its path there.
func copyTestdata(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ipam.json")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func newFileStore(t *testing.T, path string, mode Mode, clock *fakeClock) *Store {
	t.Helper()
	s, err := New(Options{Mode: mode, CooldownPeriod: 30 * time.Second, Checkpointer: NewFileCheckpointer(path), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// upstreamNode is the node the testdata checkpoint came from.
func upstreamNode(t *testing.T, s *Store) {
	t.Helper()
	steps := []struct {
		eni   ENI
		cidrs []string
	}{
		{ENI{ID: "eni-0", IsPrimary: true}, []string{"10.0.1.23/32", "10.0.1.40/32", "10.0.1.41/32"}},
		{ENI{ID: "eni-1", DeviceNumber: 1, RouteTableID: 2}, []string{"10.0.2.0/28"}},
	}
	for _, st := range steps {
		if err := s.AddENI(st.eni); err != nil {
			t.Fatal(err)
		}
		for _, c := range st.cidrs {
			if err := s.AddCIDR(st.eni.ID, pfx(c)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestRestoreUpstreamFile(t *testing.T) {
	path := copyTestdata(t, "upstream-ipam.json")
	clock := newClock()
	s := newFileStore(t, path, ModeSecondaryIPv4, clock)
	upstreamNode(t, s)
	res, err := s.Load(func(Allocation) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, s)
	if len(res.Restored) != 4 || len(res.Stale) != 0 || len(res.Unknown) != 0 {
		t.Fatalf("restore result: %+v", res)
	}
	web, ok := s.Lookup(Key{"aws-cni", "3f1c2b6a9d0e4f5a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a", "eth0"})
	if !ok || web.Addr != ip("10.0.1.23") || web.ENIID != "eni-0" || web.Meta != (Metadata{"default", "web-1", 1}) ||
		!web.AssignedAt.Equal(time.Unix(0, 1724112000000000000)) {
		t.Fatalf("web-1: %+v %v", web, ok)
	}
	dns, ok := s.Lookup(Key{"aws-cni", "9ab8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8", "eth0"})
	if !ok || dns.Addr != ip("10.0.2.5") || dns.ENIID != "eni-1" || dns.RouteTableID != 2 || dns.Meta.InterfacesCount != 0 {
		t.Fatalf("coredns (a pod on a prefix while in secondary mode): %+v %v", dns, ok)
	}
	st := s.Stats()
	if st.Pods != 4 || st.AssignedIPs != 2 || st.TotalIPs != 3 || st.AvailableIPs != 1 {
		t.Fatalf("stats after restore: %+v", st)
	}
	// The migrated entry (no metadata) is found by a DEL with real names.
	got, err := s.Unassign(Key{"aws-cni", "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e", "eth0"})
	if err != nil || got.Addr != ip("10.0.1.40") || got.Meta != (Metadata{}) {
		t.Fatalf("DEL of the migrated entry: %+v %v", got, err)
	}
	// A new pod does not get a restored address.
	a, err := s.Assign(podKey(1), podMeta(1))
	if err != nil || a.Addr != ip("10.0.1.41") {
		t.Fatalf("new pod: %+v %v", a, err)
	}
	checkUpstreamShape(t, path, 4)
}

// checkUpstreamShape asserts the file still has upstream's shape: only the
// keys upstream writes (plus our "unassigned"), with its types.
func checkUpstreamShape(t *testing.T, path string, wantAllocs int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for k := range top {
		if k != "version" && k != "allocations" && k != "unassigned" {
			t.Fatalf("unexpected top-level key %q in %s", k, data)
		}
	}
	var allocs []map[string]any
	if err := json.Unmarshal(top["allocations"], &allocs); err != nil {
		t.Fatal(err)
	}
	if len(allocs) != wantAllocs {
		t.Fatalf("%d allocations in file, want %d: %s", len(allocs), wantAllocs, data)
	}
	allowed := map[string]bool{"networkName": true, "containerID": true, "ifName": true, "ipv4": true, "ipv6": true, "allocationTimestamp": true, "metadata": true}
	for _, a := range allocs {
		for k := range a {
			if !allowed[k] {
				t.Fatalf("unexpected allocation key %q in %s", k, data)
			}
		}
	}
	if !strings.HasSuffix(string(data), "}\n") || strings.Count(string(data), "\n") != 1 {
		t.Fatalf("want one JSON object and a newline like upstream's encoder: %q", data)
	}
}

func TestRestoreUpstreamIPv6File(t *testing.T) {
	path := copyTestdata(t, "upstream-ipam-v6.json")
	s := newFileStore(t, path, ModeIPv6, newClock())
	if err := s.AddENI(ENI{ID: "eni-0", IsPrimary: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddCIDR("eni-0", pfx("2600:1f14:abc:de01:5b2c::/80")); err != nil {
		t.Fatal(err)
	}
	res, err := s.Load(nil)
	if err != nil || len(res.Restored) != 1 {
		t.Fatalf("restore: %+v %v", res, err)
	}
	a, err := s.Assign(podKey(1), podMeta(1))
	if err != nil || a.Addr != ip("2600:1f14:abc:de01:5b2c::") {
		t.Fatalf("next IPv6 pod: %+v %v", a, err)
	}
	a, err = s.Assign(podKey(2), podMeta(2))
	if err != nil || a.Addr != ip("2600:1f14:abc:de01:5b2c::1") {
		t.Fatalf("next IPv6 pod: %+v %v", a, err)
	}
	a, err = s.Assign(podKey(3), podMeta(3))
	if err != nil || a.Addr != ip("2600:1f14:abc:de01:5b2c::3") {
		t.Fatalf("restored ::2 must be skipped: %+v %v", a, err)
	}
	checkInvariants(t, s)
	checkUpstreamShape(t, path, 4)
}

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
	dropped, err := f.s.DropPending()
	if err != nil || len(dropped) != 1 || dropped[0].Key != podKey(3) {
		t.Fatalf("DropPending: %+v %v", dropped, err)
	}
	checkInvariants(t, f.s)
	if st := f.s.Stats(); st.Pods != 1 || st.Pending != 0 {
		t.Fatalf("stats: %+v", st)
	}
}

func TestCheckpointRoundTripKeepsCooldown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	clock := newClock()
	s := newFileStore(t, path, ModePrefixIPv4, clock)
	upstreamNode(t, s)
	for i := 1; i <= 4; i++ {
		if _, err := s.Assign(podKey(i), podMeta(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Unassign(podKey(2)); err != nil { // 10.0.2.1 cools
		t.Fatal(err)
	}
	clock.advance(10 * time.Second)
	before := s.AllocatedIPs()

	// Restart.
	s2 := newFileStore(t, path, ModePrefixIPv4, clock)
	upstreamNode(t, s2)
	res, err := s2.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, s2)
	if len(res.Restored) != 3 {
		t.Fatalf("restored %+v", res)
	}
	if after := s2.AllocatedIPs(); !slices.EqualFunc(before, after, func(a, b Assignment) bool {
		return a.Key == b.Key && a.Addr == b.Addr && a.Meta == b.Meta && a.AssignedAt.Equal(b.AssignedAt) && a.ENIID == b.ENIID
	}) {
		t.Fatalf("allocations changed across restart:\n%+v\n%+v", before, after)
	}
	if st := s2.Stats(); st.CoolingIPs != 1 || st.AssignedIPs != 3 {
		t.Fatalf("cooldown lost across restart: %+v", st)
	}
	if a, err := s2.Assign(podKey(5), podMeta(5)); err != nil || a.Addr != ip("10.0.2.4") {
		t.Fatalf("cooling 10.0.2.1 handed out after restart: %+v %v", a, err)
	}
	clock.advance(20 * time.Second)
	if st := s2.Stats(); st.CoolingIPs != 0 {
		t.Fatalf("cooldown did not end on time: %+v", st)
	}
	if a, err := s2.Assign(podKey(6), podMeta(6)); err != nil || a.Addr != ip("10.0.2.1") {
		t.Fatalf("cooled address: %+v %v", a, err)
	}
	checkInvariants(t, s2)
}

func TestCheckpointBadInput(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    []string
	}{
		{"wrong version", `{"version":"vpc-cni-ipam/2","allocations":[]}`, []string{`"vpc-cni-ipam/2"`, "unsupported version"}},
		{"no version", `{"allocations":[]}`, []string{`unsupported version ""`}},
		{"corrupt JSON", `{"version":"vpc-cni-ipam/1","allocations":[{"networkName":`, []string{"corrupt JSON", "offset"}},
		{"garbage", "\x00\x01not json", []string{"corrupt JSON at byte offset 1"}},
		{"wrong type", `{"version":"vpc-cni-ipam/1","allocations":{"a":1}}`, []string{"unexpected JSON type at byte offset"}},
		{"bad ipv4", `{"version":"vpc-cni-ipam/1","allocations":[{"networkName":"n","containerID":"c1","ifName":"eth0","ipv4":"10.0.1.300"}]}`,
			[]string{"allocation 0", `"c1"`, `invalid ipv4 "10.0.1.300"`}},
		{"ipv6 in ipv4", `{"version":"vpc-cni-ipam/1","allocations":[{"networkName":"n","containerID":"c1","ifName":"eth0","ipv4":"2001:db8::1"}]}`,
			[]string{`invalid ipv4 "2001:db8::1"`}},
		{"no address", `{"version":"vpc-cni-ipam/1","allocations":[{"networkName":"n","containerID":"c1","ifName":"eth0"}]}`,
			[]string{"no ipv4 or ipv6 address"}},
		{"duplicate address", `{"version":"vpc-cni-ipam/1","allocations":[` +
			`{"networkName":"n","containerID":"c1","ifName":"eth0","ipv4":"10.0.1.23"},` +
			`{"networkName":"n","containerID":"c2","ifName":"eth0","ipv4":"10.0.1.23"}]}`,
			[]string{"duplicate address 10.0.1.23", "n/c1/eth0", "n/c2/eth0"}},
		{"duplicate key", `{"version":"vpc-cni-ipam/1","allocations":[` +
			`{"networkName":"n","containerID":"c1","ifName":"eth0","ipv4":"10.0.1.23"},` +
			`{"networkName":"n","containerID":"c1","ifName":"eth0","ipv4":"10.0.1.40"}]}`,
			[]string{"duplicate key n/c1/eth0", "10.0.1.23", "10.0.1.40"}},
		{"bad cooling entry", `{"version":"vpc-cni-ipam/1","allocations":[],"unassigned":[{"ipv4":"x"}]}`,
			[]string{"unassigned entry 0", `invalid ipv4 "x"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ipam.json")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			s := newFileStore(t, path, ModeSecondaryIPv4, newClock())
			upstreamNode(t, s)
			_, err := s.Load(nil)
			if !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("got %v, want ErrCheckpoint", err)
			}
			for _, w := range append(tc.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if st := s.Stats(); st.Pods != 0 || st.CoolingIPs != 0 {
				t.Fatalf("a rejected checkpoint changed the store: %+v", st)
			}
			if data, _ := os.ReadFile(path); string(data) != tc.content {
				t.Fatal("a rejected checkpoint was overwritten: the evidence is gone")
			}
		})
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

func TestFileCheckpointerWriteErrors(t *testing.T) {
	dir := t.TempDir()
	// The target is a directory: rename fails, no temp file may remain.
	target := filepath.Join(dir, "ipam.json")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	cp := NewFileCheckpointer(target)
	err := cp.Write(File{Version: CheckpointVersion})
	if !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), target) {
		t.Fatalf("write over a directory: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temp files left behind: %v", entries)
	}
	missing := filepath.Join(dir, "no-such-dir", "ipam.json")
	if err := NewFileCheckpointer(missing).Write(File{Version: CheckpointVersion}); !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), missing) {
		t.Fatalf("write into a missing directory: %v", err)
	}
}

func TestEncodeFileExact(t *testing.T) {
	got, err := EncodeFile(File{Version: CheckpointVersion, Allocations: []Allocation{{
		Key: Key{"aws-cni", "abc", "eth0"}, Addr: ip("10.0.1.23"), AssignedAt: time.Unix(0, 1724112000000000000),
		Meta: Metadata{"default", "web-1", 1},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":"vpc-cni-ipam/1","allocations":[{"networkName":"aws-cni","containerID":"abc","ifName":"eth0","ipv4":"10.0.1.23","allocationTimestamp":1724112000000000000,"metadata":{"k8sPodNamespace":"default","k8sPodName":"web-1","interfacesCount":1}}]}` + "\n"
	if string(got) != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	got, _ = EncodeFile(File{Version: CheckpointVersion})
	if string(got) != `{"version":"vpc-cni-ipam/1","allocations":[]}`+"\n" {
		t.Fatalf("empty file: %s", got)
	}
	got, _ = EncodeFile(File{Version: CheckpointVersion, Cooling: []Cooling{{Addr: ip("2001:db8::5"), UnassignedAt: time.Unix(0, 7)}}})
	if string(got) != `{"version":"vpc-cni-ipam/1","allocations":[],"unassigned":[{"ipv6":"2001:db8::5","unassignedTimestamp":7}]}`+"\n" {
		t.Fatalf("cooling entry: %s", got)
	}
}

func TestCheckpointPath(t *testing.T) {
	tests := []struct {
		base string
		card int
		want string
	}{
		{DefaultCheckpointPath, 0, "/var/run/aws-node/ipam.json"},
		{DefaultCheckpointPath, 1, "/var/run/aws-node/ipam-nic-1.json"},
		{"/tmp/x/store.json", 3, "/tmp/x/store-nic-3.json"},
		{"/tmp/x/store", 2, "/tmp/x/store-nic-2"},
	}
	for _, tc := range tests {
		if got := CheckpointPath(tc.base, tc.card); got != tc.want {
			t.Errorf("CheckpointPath(%q, %d) = %q, want %q", tc.base, tc.card, got, tc.want)
		}
	}
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
