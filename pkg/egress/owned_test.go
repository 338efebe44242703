package egress

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestStoreOwned: Owned reports what Release(id, ifname) frees (a legacy
// file naming the container alone included) and whether the container
// holds an address under another interface name.
func TestStoreOwned(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore("aws-cni", dir, mustRange(t, "169.254.172.0/29"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	a, err := s.Acquire("ctr-a", "eth0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Acquire("ctr-b", "eth0", nil); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "aws-cni", "169.254.172.6"), []byte("ctr-c"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id, ifname string
		held       []netip.Addr
		elsewhere  bool
	}{
		{"ctr-a", "eth0", []netip.Addr{a.Addr.Addr()}, false},
		{"ctr-a", "v4if0", nil, true},
		{"ctr-c", "eth0", []netip.Addr{netip.MustParseAddr("169.254.172.6")}, false},
		{"ctr-x", "eth0", nil, false},
	} {
		held, elsewhere, err := s.Owned(tc.id, tc.ifname)
		if err != nil || !slices.Equal(held, tc.held) || elsewhere != tc.elsewhere {
			t.Errorf("Owned(%s, %s) = %v, %v, %v; want %v, %v", tc.id, tc.ifname, held, elsewhere, err, tc.held, tc.elsewhere)
		}
	}
}
