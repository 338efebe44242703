package egress

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func mustRange(t *testing.T, subnet string) Range {
	t.Helper()
	r, err := NewRange(subnet, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestStoreRoundRobinAndPersistence(t *testing.T) {
	dir := t.TempDir()
	rng := mustRange(t, "169.254.172.0/29") // .2-.6 allocatable
	s, err := OpenStore("aws-cni", dir, rng)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Acquire("ctr-a", "eth0", nil)
	if err != nil || a.Addr.String() != "169.254.172.2/29" || a.GW.String() != "169.254.172.1" {
		t.Fatalf("first lease %v %v", a, err)
	}
	b, _ := s.Acquire("ctr-b", "eth0", nil)
	if again, _ := s.Acquire("ctr-a", "eth0", nil); again != a {
		t.Errorf("repeated ADD got %v, want %v", again, a)
	}
	if err := s.Release("ctr-a", "eth0"); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// A new process (a later plugin run, a rebooted node) sees b's lease
	// and continues round robin after it, so a is not reused at once.
	s2, err := OpenStore("aws-cni", dir, rng)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if l, ok, err := s2.Held("ctr-b", "eth0"); !ok || err != nil || l != b {
		t.Errorf("after reopen b holds %v %v %v, want %v", l, ok, err, b)
	}
	c, _ := s2.Acquire("ctr-c", "eth0", nil)
	if c.Addr.String() != "169.254.172.4/29" {
		t.Errorf("c got %v, want the next after b", c.Addr)
	}
	// The file format is host-local's.
	raw, err := os.ReadFile(filepath.Join(dir, "aws-cni", "169.254.172.3"))
	if err != nil || string(raw) != "ctr-b\r\neth0" {
		t.Errorf("b's file %q %v", raw, err)
	}
}

func TestStoreExhaustion(t *testing.T) {
	s, err := OpenStore("aws-cni", t.TempDir(), mustRange(t, "169.254.172.0/29"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 5 {
		if _, err := s.Acquire(string(rune('a'+i)), "eth0", nil); err != nil {
			t.Fatalf("lease %d: %v", i, err)
		}
	}
	_, err = s.Acquire("late", "eth0", nil)
	if !errors.Is(err, ErrExhausted) {
		t.Fatalf("sixth lease: %v, want ErrExhausted", err)
	}
	if l, ok, _ := s.Held("late", "eth0"); ok {
		t.Errorf("failed ADD holds %v", l)
	}
	if err := s.Release("c", "eth0"); err != nil {
		t.Fatal(err)
	}
	if l, err := s.Acquire("late", "eth0", nil); err != nil || l.Addr.Addr().String() != "169.254.172.4" {
		t.Errorf("after a release: %v %v", l, err)
	}
}

func TestStoreReleaseLegacyAndList(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore("aws-cni", dir, mustRange(t, "fd00::ac:00/118"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// host-local before ifname keys wrote the container ID alone.
	if err := os.WriteFile(filepath.Join(dir, "aws-cni", "fd00::ac:9"), []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := s.Acquire("new", "eth0", nil)
	if err != nil || l.Addr.String() != "fd00::ac:2/118" {
		t.Fatalf("lease %v %v , want the first free address", l, err)
	}
	hs, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, h := range hs {
		ids = append(ids, h.ContainerID+"/"+h.IfName)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"new/eth0", "old/"}) {
		t.Errorf("list %v", ids)
	}
	if err := s.Release("old", "eth0"); err != nil {
		t.Fatal(err)
	}
	if hs, _ := s.List(); len(hs) != 1 {
		t.Errorf("after releasing the legacy entry: %v", hs)
	}
}

// A plugin killed between creating a reservation file and writing its
// owner leaves the file empty (the write happens under the store's lock,
// so an empty file seen under the lock is always such a leftover). No DEL
// ever names its owner, so without reclaiming it the address would stay
// held for the node's life.
func TestStoreReclaimsEmptyReservations(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore("aws-cni", dir, mustRange(t, "169.254.172.0/29")) // .2-.6
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, a := range []string{"169.254.172.2", "169.254.172.3", "169.254.172.4", "169.254.172.5", "169.254.172.6"} {
		if err := os.WriteFile(filepath.Join(dir, "aws-cni", a), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.Acquire("ctr", "eth0", nil)
	if err != nil {
		t.Fatalf("ADD with every address left empty by killed runs: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "aws-cni", l.Addr.Addr().String()))
	if err != nil || string(raw) != "ctr\r\neth0" {
		t.Errorf("reclaimed reservation holds %q (%v), want ctr\\r\\neth0", raw, err)
	}
	if again, err := s.Acquire("ctr", "eth0", nil); err != nil || again != l {
		t.Errorf("repeated ADD got %v %v, want %v", again, err, l)
	}
}
