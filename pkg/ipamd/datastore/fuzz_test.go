package datastore

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecodeRestore feeds arbitrary bytes through the checkpoint reader and
// Restore: every input is either restored or rejected with ErrCheckpoint,
// never a panic, and a restored store stays consistent.
func FuzzDecodeRestore(f *testing.F) {
	for _, name := range []string{"upstream-ipam.json", "upstream-ipam-v6.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"version":"vpc-cni-ipam/1","allocations":[],"unassigned":[{"ipv4":"10.0.2.3","unassignedTimestamp":1}]}`))
	f.Add([]byte(`{"version":"vpc-cni-ipam/1","allocations":[{"ipv4":"10.0.1.23"},{"ipv4":"10.0.1.23"}]}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := DecodeFile("fuzz.json", data)
		if err != nil {
			if !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("error without ErrCheckpoint: %v", err)
			}
			return
		}
		clock := newClock()
		s, err := New(Options{CooldownPeriod: time.Minute, Checkpointer: &MemCheckpointer{}, Now: clock.now})
		if err != nil {
			t.Fatal(err)
		}
		upstreamNodeTB(t, s)
		if _, err := s.Restore(file, func(a Allocation) bool { return len(a.Key.ContainerID)%3 != 0 }); err != nil {
			if !errors.Is(err, ErrCheckpoint) {
				t.Fatalf("restore error without ErrCheckpoint: %v", err)
			}
			return
		}
		checkInvariants(t, s)
		for range 4 {
			if _, err := s.Assign(podKey(1), podMeta(1)); err != nil && !errors.Is(err, ErrNoAvailableAddress) {
				t.Fatal(err)
			}
		}
		checkInvariants(t, s)
	})
}

func upstreamNodeTB(t *testing.T, s *Store) {
	t.Helper()
	for _, e := range []ENI{{ID: "eni-0", IsPrimary: true}, {ID: "eni-1", DeviceNumber: 1}} {
		if err := s.AddENI(e); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ eni, cidr string }{
		{"eni-0", "10.0.1.23/32"}, {"eni-0", "10.0.1.40/32"}, {"eni-1", "10.0.2.0/28"}, {"eni-1", "2600:1f14:abc:de01:5b2c::/80"},
	} {
		if err := s.AddCIDR(c.eni, pfx(c.cidr)); err != nil {
			t.Fatal(err)
		}
	}
}
