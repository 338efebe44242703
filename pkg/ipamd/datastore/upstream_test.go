package datastore

import (
	"encoding/json"
	"os"
	"path/filepath"
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
