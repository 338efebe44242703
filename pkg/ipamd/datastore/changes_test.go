package datastore

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// namesChanges checks every File the store writes: it holds the store's
// lists as they are (the store waits for the write in this test), and
// wherever it differs from the File before, it names that position
// (changes.go). It then hands the File to a LogCheckpointer. It runs on
// the store's writer goroutine: the first failure waits in err.
type namesChanges struct {
	err      error
	s        *Store
	lc       *LogCheckpointer
	last     File // a copy of the File written before
	lastSeq  uint64
	named    int // Files that named their changes
	failNext bool
}

func (n *namesChanges) Write(f File) error {
	if err := n.check(f); err != nil && n.err == nil {
		n.err = err
	}
	n.last = File{Allocations: slices.Clone(f.Allocations), Cooling: slices.Clone(f.Cooling)}
	if f.changes != nil {
		n.lastSeq = f.changes.seq
	}
	if n.failNext {
		return errors.New("injected")
	}
	return n.lc.Write(f)
}

func (n *namesChanges) Read() (File, error) { return n.lc.Read() }

func (n *namesChanges) check(f File) error {
	ch := f.changes
	if ch == nil {
		return errors.New("the store wrote a File without its changes")
	}
	if !slices.Equal(f.Allocations, n.s.allocs) || !slices.Equal(f.Cooling, n.s.cool) {
		state := entriesOf(File{Allocations: n.s.allocs, Cooling: n.s.cool})
		return fmt.Errorf("File %d is not the store's state: missing %v, extra %v", ch.seq, minus(state, entriesOf(f)), minus(entriesOf(f), state))
	}
	if ch.all {
		return nil
	}
	if ch.base != n.lastSeq {
		return fmt.Errorf("File %d names changes against File %d; the last one was %d", ch.seq, ch.base, n.lastSeq)
	}
	n.named++
	return errors.Join(checkNamed("allocation", n.last.Allocations, f.Allocations, ch.allocs),
		checkNamed("cooling", n.last.Cooling, f.Cooling, ch.cool))
}

// checkNamed fails when prev and next differ at a position below both
// lengths that named leaves out.
func checkNamed[T comparable](what string, prev, next []T, named []int32) error {
	for i := range min(len(prev), len(next)) {
		if prev[i] != next[i] && !slices.Contains(named, int32(i)) {
			return fmt.Errorf("%s %d changed from %v to %v but the File does not name it (it names %v)", what, i, prev[i], next[i], named)
		}
	}
	return nil
}

// Through random assignments, releases, cooldowns ending, CIDRs and ENIs
// removed with their pods, and failed writes, every File names all its
// changes, and the log read back always holds exactly the store's state.
func TestStoreNamesEveryChange(t *testing.T) {
	for seed := range uint64(6) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 11))
			m := newMemFS()
			nc := &namesChanges{lc: &LogCheckpointer{Path: memPath, fsys: m, CompactBytes: 4000, IdleFold: -1,
				Log: slog.New(slog.NewTextHandler(io.Discard, nil))}}
			clock := newClock()
			s, err := New(Options{Mode: ModePrefixIPv4, CooldownPeriod: 10 * time.Second, Checkpointer: nc, Now: clock.now})
			if err != nil {
				t.Fatal(err)
			}
			nc.s = s
			cidrs := map[string][]string{"eni-0": {"10.0.0.0/28", "10.0.0.16/28"}, "eni-1": {"10.0.1.0/28"}, "eni-2": {"10.0.2.0/28", "10.0.2.16/28"}}
			addENI := func(id string, dev int) {
				if err := s.AddENI(ENI{ID: id, DeviceNumber: dev, IsPrimary: dev == 0}); err != nil {
					t.Fatal(err)
				}
				for _, c := range cidrs[id] {
					if err := s.AddCIDR(id, pfx(c)); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i := range 3 {
				addENI(fmt.Sprint("eni-", i), i)
			}
			assigned, released := 0, 0
			for step := range 1500 {
				nc.failNext = r.IntN(25) == 0
				switch op := r.IntN(100); {
				case op < 45:
					if _, err := s.Assign(podKey(r.IntN(90)), podMeta(step)); err == nil {
						assigned++
					}
				case op < 85:
					if _, err := s.Unassign(podKey(r.IntN(90))); err == nil {
						released++
					}
				case op < 92:
					clock.advance(time.Duration(r.IntN(6)) * time.Second)
					s.Stats() // cooldowns that ended leave the heap
				case op < 96:
					id := fmt.Sprint("eni-", 1+r.IntN(2))
					c := cidrs[id][0]
					if _, err := s.RemoveCIDR(id, pfx(c), true); err == nil {
						_ = s.Persist()
						_ = s.AddCIDR(id, pfx(c))
					}
				default:
					dev := 1 + r.IntN(2)
					id := fmt.Sprint("eni-", dev)
					if _, err := s.RemoveENI(id, true); err == nil {
						_ = s.Persist()
						addENI(id, dev)
					}
				}
				nc.failNext = false
				if err := s.Persist(); err != nil {
					t.Fatalf("step %d: persist: %v", step, err)
				}
				if nc.err != nil {
					t.Fatalf("step %d: %v", step, nc.err)
				}
				nc.lc.mu.Lock()
				nc.lc.waitFold() // a read runs at start-up, never beside a fold
				nc.lc.mu.Unlock()
				got, err := readCheckpoint(m, memPath)
				if err != nil {
					t.Fatalf("step %d: read: %v", step, err)
				}
				if want, have := entriesOf(nc.last), entriesOf(got); !slices.Equal(want, have) {
					t.Fatalf("step %d: read back, missing %v, extra %v", step, minus(want, have), minus(have, want))
				}
			}
			if nc.named < 1000 || assigned < 300 || released < 100 {
				t.Fatalf("%d Files named their changes, after %d assignments and %d releases: too few to tell", nc.named, assigned, released)
			}
		})
	}
}
