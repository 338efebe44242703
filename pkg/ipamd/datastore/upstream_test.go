package datastore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
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

// upstreamRead is a reader of upstream's documented checkpoint format
// (docs/compatibility.md, "Files and paths"), written for this test apart
// from checkpoint.go: the version must be "vpc-cni-ipam/1", every
// allocation may carry only the fields upstream knows, and no address or
// key may appear twice. Unknown top-level fields ("unassigned") are
// skipped, as upstream's decoder skips them. It returns address by key.
func upstreamRead(data []byte) (map[Key]netip.Addr, error) {
	var top struct {
		Version     string            `json:"version"`
		Allocations []json.RawMessage `json:"allocations"`
	}
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, err
	}
	if top.Version != "vpc-cni-ipam/1" {
		return nil, fmt.Errorf("version %q", top.Version)
	}
	out := map[Key]netip.Addr{}
	held := map[netip.Addr]bool{}
	for i, raw := range top.Allocations {
		var e struct {
			NetworkName         string `json:"networkName"`
			ContainerID         string `json:"containerID"`
			IfName              string `json:"ifName"`
			IPv4                string `json:"ipv4"`
			IPv6                string `json:"ipv6"`
			AllocationTimestamp int64  `json:"allocationTimestamp"`
			Metadata            struct {
				K8sPodNamespace string `json:"k8sPodNamespace"`
				K8sPodName      string `json:"k8sPodName"`
				InterfacesCount int    `json:"interfacesCount"`
			} `json:"metadata"`
		}
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&e); err != nil {
			return nil, fmt.Errorf("allocation %d: %w", i, err)
		}
		a, err := netip.ParseAddr(e.IPv4 + e.IPv6)
		if err != nil || e.AllocationTimestamp <= 0 || e.Metadata.K8sPodName == "" {
			return nil, fmt.Errorf("allocation %d: %s", i, raw)
		}
		k := Key{NetworkName: e.NetworkName, ContainerID: e.ContainerID, IfName: e.IfName}
		if _, dup := out[k]; dup || held[a] {
			return nil, fmt.Errorf("allocation %d: %s or %s listed twice", i, k, a)
		}
		out[k], held[a] = a, true
	}
	return out, nil
}

// downgradeCheck reads the file back with upstreamRead after every write
// and compares it with what the write was handed: a downgrade at any moment
// finds every live allocation.
type downgradeCheck struct {
	*FileCheckpointer
	mu     sync.Mutex
	writes int
	errs   []error
}

func (d *downgradeCheck) Write(f File) error {
	if err := d.FileCheckpointer.Write(f); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.writes++
	data, err := os.ReadFile(d.Path)
	if err == nil {
		var got map[Key]netip.Addr
		if got, err = upstreamRead(data); err == nil && len(got) != len(f.Allocations) {
			err = fmt.Errorf("%d allocations, the write held %d", len(got), len(f.Allocations))
		}
		for _, a := range f.Allocations {
			if err == nil && got[a.Key] != a.Addr {
				err = fmt.Errorf("%s holds %v, the write said %s", a.Key, got[a.Key], a.Addr)
			}
		}
	}
	if err != nil {
		d.errs = append(d.errs, fmt.Errorf("upstream's reader after write %d: %w", d.writes, err))
	}
	return nil
}

// Three clients ADD and DEL concurrently (every third pod is deleted), so
// changes share writes. After every write upstream's reader finds exactly
// what the write held; at the end it and our restore both find exactly the
// live pods, and our restore also the released addresses, still cooling.
func TestGroupCommittedCheckpointReadByBothReaders(t *testing.T) {
	const clients, perClient = 3, 80
	path := filepath.Join(t.TempDir(), "ipam.json")
	cp := &downgradeCheck{FileCheckpointer: NewFileCheckpointer(path)}
	clock := newClock()
	s, err := New(Options{Mode: ModePrefixIPv4, CooldownPeriod: time.Minute, Checkpointer: cp, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	node := func(s *Store) {
		if err := s.AddENI(ENI{ID: "eni-0", IsPrimary: true}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddCIDR("eni-0", pfx("10.0.0.0/24")); err != nil {
			t.Fatal(err)
		}
	}
	node(s)
	var wg sync.WaitGroup
	live := make([]map[Key]netip.Addr, clients)
	errs := make(chan error, clients)
	for c := range clients {
		live[c] = map[Key]netip.Addr{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perClient {
				k, m := podKey(c*1000+j), podMeta(c*1000+j)
				a, err := s.Assign(k, m)
				if err != nil {
					errs <- err
					return
				}
				live[c][k] = a.Addr
				if j%3 == 0 {
					if _, err := s.Unassign(k); err != nil {
						errs <- err
						return
					}
					delete(live[c], k)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, err := range cp.errs {
		t.Error(err)
	}
	released := clients * ((perClient + 2) / 3)
	t.Logf("%d changes in %d checkpoint writes", clients*perClient+released, cp.writes)
	want := map[Key]netip.Addr{}
	for _, m := range live {
		for k, a := range m {
			want[k] = a
		}
	}

	upstreamReadsExactly(t, path, want)

	r, err := New(Options{Mode: ModePrefixIPv4, CooldownPeriod: time.Minute, Checkpointer: NewFileCheckpointer(path), Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	node(r)
	res, err := r.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Restored) != len(want) {
		t.Fatalf("our restore: %d allocations, want %d", len(res.Restored), len(want))
	}
	for k, addr := range want {
		if a, ok := r.Lookup(k); !ok || a.Addr != addr {
			t.Fatalf("our restore: %s holds %v (%v), want %s", k, a.Addr, ok, addr)
		}
	}
	if st := r.Stats(); st.CoolingIPs != released {
		t.Fatalf("our restore: %d cooling addresses, want the %d released", st.CoolingIPs, released)
	}
	checkInvariants(t, r)
}

// upstreamReadsExactly: upstream's reader of the file at path finds exactly
// want.
func upstreamReadsExactly(t *testing.T, path string, want map[Key]netip.Addr) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	up, err := upstreamRead(data)
	if err != nil {
		t.Fatalf("upstream's reader: %v", err)
	}
	if len(up) != len(want) {
		t.Fatalf("upstream's reader finds %d allocations, want %d", len(up), len(want))
	}
	for k, a := range want {
		if up[k] != a {
			t.Fatalf("upstream's reader: %s holds %v, want %s", k, up[k], a)
		}
	}
}
