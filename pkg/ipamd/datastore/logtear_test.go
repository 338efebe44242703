package datastore

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// tearOnceFS is memFS whose first read of a log returns it as a reader
// racing the appends can see it: one read copies the file page by page,
// so a record appended after the copy passed its page is missing (zeros)
// while the next one, appended before the copy reached its page, is whole.
type tearOnceFS struct {
	*memFS
	torn bool
}

func (f *tearOnceFS) ReadFile(name string) ([]byte, error) {
	b, err := f.memFS.ReadFile(name)
	if err != nil || f.torn || !strings.Contains(name, ".log.") {
		return b, err
	}
	var offs []int
	for off := 0; off+8 <= len(b); {
		n := int(binary.LittleEndian.Uint32(b[off:]))
		if n == 0 || off+8+n > len(b) {
			break
		}
		offs = append(offs, off)
		off += 8 + n
	}
	if len(offs) < 3 {
		return b, nil
	}
	f.torn = true
	out := slices.Clone(b)
	clear(out[offs[len(offs)-2]+8 : offs[len(offs)-1]])
	return out, nil
}

// TestReadRacingAnAppendIsNotCorruption: a reader (ipamctl, the local
// VPC's inspection, a test) reads the checkpoint while ipamd appends to
// its log and sees one record not yet written with a later one whole.
// The read must give the state, as a read a moment later does. Before, it
// failed as corruption ("damaged but a whole record follows"), which CI
// saw in TestReadDuringFoldsSeesEveryAcknowledgedAssignment.
func TestReadRacingAnAppendIsNotCorruption(t *testing.T) {
	m := newMemFS()
	lc := &LogCheckpointer{Path: memPath, fsys: m, IdleFold: -1}
	s, err := New(Options{Mode: ModeSecondaryIPv4, Checkpointer: lc})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddENI(ENI{ID: "eni-a", IsPrimary: true}); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"10.0.0.10/32", "10.0.0.11/32", "10.0.0.12/32"} {
		if err := s.AddCIDR("eni-a", netip.MustParsePrefix(a)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if _, err := s.Assign(podKey(i), podMeta(i)); err != nil {
			t.Fatal(err)
		}
	}
	fsys := &tearOnceFS{memFS: m}
	f, err := readCheckpoint(fsys, memPath)
	if !fsys.torn {
		t.Fatal("the log never had three records to tear: the test proves nothing")
	}
	if err != nil {
		t.Fatalf("a read racing the appends: %v", err)
	}
	for i := range 3 {
		if !fileHasKey(f, podKey(i)) {
			t.Errorf("the read misses %s", podKey(i))
		}
	}
}
