package datastore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// gateCheckpointer records every File it writes. While gate is open
// (non-nil and not closed) every Write blocks on it; errs fails the writes
// in order (a nil entry, or none left, succeeds).
type gateCheckpointer struct {
	gate chan struct{}

	mu     sync.Mutex
	errs   []error
	writes []File
}

func (g *gateCheckpointer) Write(f File) error {
	if g.gate != nil {
		<-g.gate
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	var err error
	if len(g.errs) > 0 {
		err, g.errs = g.errs[0], g.errs[1:]
	}
	if err != nil {
		return err
	}
	g.writes = append(g.writes, File{Version: f.Version, Allocations: slicesClone(f.Allocations), Cooling: slicesClone(f.Cooling)})
	return nil
}

func (g *gateCheckpointer) Read() (File, error) {
	return File{}, fmt.Errorf("gate: %w", fs.ErrNotExist)
}

func (g *gateCheckpointer) written() []File {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slicesClone(g.writes)
}

// gatedStore is a store of one /28 whose checkpoint writes wait for the
// test to close cp.gate.
func gatedStore(t *testing.T, errs ...error) (*Store, *gateCheckpointer) {
	t.Helper()
	cp := &gateCheckpointer{errs: errs}
	clock := newClock()
	s, err := New(Options{Mode: ModePrefixIPv4, CooldownPeriod: time.Minute, Checkpointer: cp, Now: clock.now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddENI(ENI{ID: "eni-0", IsPrimary: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddCIDR("eni-0", pfx("10.0.0.0/28")); err != nil {
		t.Fatal(err)
	}
	return s, cp
}

// waitAssigned waits until the store holds n addresses: the Assigns that
// were started have made their change and wait for its write.
func waitAssigned(t *testing.T, s *Store, n int) {
	t.Helper()
	err := testutil.Eventually(context.Background(), 10*time.Second, func() error {
		if got := s.Stats().AssignedIPs; got != n {
			return fmt.Errorf("%d addresses assigned, want %d", got, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

type assignResult struct {
	i   int
	a   Assignment
	err error
}

// While a checkpoint write is in flight, the assignments that arrive share
// the next write: 1 + 8 concurrent Assigns cost 2 writes. No Assign, nor a
// repeated ADD of a key in flight, returns before a write holding it.
func TestGroupCommitSharesOneWrite(t *testing.T) {
	s, cp := gatedStore(t)
	cp.gate = make(chan struct{})
	done := make(chan assignResult, 10)
	assign := func(i int) {
		a, err := s.Assign(podKey(i), podMeta(i))
		done <- assignResult{i, a, err}
	}
	go assign(0)
	waitAssigned(t, s, 1) // pod 0's Assign now writes, holding no lock
	for i := 1; i <= 8; i++ {
		go assign(i)
	}
	waitAssigned(t, s, 9)
	go assign(0) // a repeated ADD: waits for the first write too
	select {
	case r := <-done:
		t.Fatalf("Assign %d returned (%v) while the only write was still blocked", r.i, r.err)
	default:
	}
	close(cp.gate)
	seen := map[netip.Addr]int{}
	var repeat []Assignment
	for range 10 {
		r := <-done
		if r.err != nil {
			t.Fatalf("Assign %d: %v", r.i, r.err)
		}
		if r.i == 0 {
			repeat = append(repeat, r.a)
			continue
		}
		if j, dup := seen[r.a.Addr]; dup {
			t.Fatalf("address %s handed to pods %d and %d", r.a.Addr, j, r.i)
		}
		seen[r.a.Addr] = r.i
	}
	if repeat[0] != repeat[1] || repeat[0].Addr != ip("10.0.0.0") {
		t.Fatalf("pod 0 and its repeated ADD got %v and %v, want 10.0.0.0 twice", repeat[0].Addr, repeat[1].Addr)
	}
	w := cp.written()
	if len(w) != 2 || len(w[0].Allocations) != 1 || len(w[1].Allocations) != 9 {
		t.Fatalf("writes %v, want 2: pod 0 alone, then all 9 (one per batch)", allocCounts(w))
	}
	checkInvariants(t, s)
}

func allocCounts(w []File) []int {
	n := make([]int, len(w))
	for i, f := range w {
		n[i] = len(f.Allocations)
	}
	return n
}

// A failed write fails every change of its batch and nothing else: its
// Assigns get the error and are undone
// before anyone sees the store, its Unassign keeps its release (see
// Unassign), and the batch written before stands. The next good write
// brings the file in line with memory.
func TestGroupCommitFailureUndoesTheBatch(t *testing.T) {
	s, cp := gatedStore(t, nil, nil, errors.New("disk full"))
	if _, err := s.Assign(podKey(100), podMeta(100)); err != nil { // write 1: 10.0.0.0
		t.Fatal(err)
	}
	cp.gate = make(chan struct{})
	done := make(chan assignResult, 8)
	assign := func(i int) {
		a, err := s.Assign(podKey(i), podMeta(i))
		done <- assignResult{i, a, err}
	}
	go assign(0) // write 2, succeeds: 10.0.0.1
	waitAssigned(t, s, 2)
	for i := 1; i <= 4; i++ { // write 3, fails
		go assign(i)
	}
	waitAssigned(t, s, 6)
	released := make(chan error, 1)
	go func() { _, err := s.Unassign(podKey(100)); released <- err }()
	waitAssigned(t, s, 5)
	close(cp.gate)

	for range 5 {
		r := <-done
		switch {
		case r.i == 0 && r.err != nil:
			t.Fatalf("Assign 0, written by the good write: %v", r.err)
		case r.i > 0 && !errors.Is(r.err, ErrCheckpoint):
			t.Fatalf("Assign %d in the failed batch: %v (got %s), want ErrCheckpoint", r.i, r.err, r.a.Addr)
		}
	}
	if err := <-released; !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("Unassign in the failed batch: %v, want ErrCheckpoint", err)
	}
	if !s.Unpersisted() {
		t.Fatal("store not marked unpersisted after a failed write")
	}
	got := s.AllocatedIPs()
	if len(got) != 1 || got[0].Key != podKey(0) || got[0].Addr != ip("10.0.0.1") {
		t.Fatalf("after the failed batch the store holds %v, want only pod 0 at 10.0.0.1", got)
	}
	checkInvariants(t, s)
	// The undone addresses are free again, lowest first (10.0.0.0 cools).
	if a, err := s.Assign(podKey(5), podMeta(5)); err != nil || a.Addr != ip("10.0.0.2") {
		t.Fatalf("next Assign: %v %v, want 10.0.0.2", a.Addr, err)
	}
	if s.Unpersisted() {
		t.Fatal("still unpersisted after a good write")
	}
	w := cp.written()
	last := w[len(w)-1]
	if len(w) != 3 || len(last.Allocations) != 2 || len(last.Cooling) != 1 || last.Cooling[0].Addr != ip("10.0.0.0") {
		t.Fatalf("writes %v, last %+v; want 3, the last with pods 0 and 5 and 10.0.0.0 cooling", allocCounts(w), last)
	}
	checkInvariants(t, s)
}

// Batches are written one after another while callers wait for them; a
// caller whose batch is written returns while the next one is still being
// written, and once no caller waits nothing is left running: the store
// holds no goroutine between bursts.
func TestGroupCommitWritesWhileCallersWait(t *testing.T) {
	base := runtime.NumGoroutine()
	s, cp := gatedStore(t)
	cp.gate = make(chan struct{})
	done := make(chan assignResult, 4)
	assign := func(i int) {
		a, err := s.Assign(podKey(i), podMeta(i))
		done <- assignResult{i, a, err}
	}
	go assign(0)
	waitAssigned(t, s, 1) // write 1 (pod 0) is in flight
	go assign(1)
	go assign(2)
	waitAssigned(t, s, 3)
	cp.gate <- struct{}{} // lets write 1 through, and only it
	if r := <-done; r.i != 0 || r.err != nil {
		t.Fatalf("first return: Assign %d (%v), want pod 0's", r.i, r.err)
	}
	select {
	case r := <-done:
		t.Fatalf("Assign %d returned while its write was blocked", r.i)
	case <-time.After(50 * time.Millisecond): // an early return would show by now
	}
	close(cp.gate)
	for range 2 {
		if r := <-done; r.err != nil {
			t.Fatalf("Assign %d: %v", r.i, r.err)
		}
	}
	if w := cp.written(); len(w) != 2 || len(w[1].Allocations) != 3 {
		t.Fatalf("writes %v, want 2: pod 0, then all 3", allocCounts(w))
	}
	// A lone change afterwards is written at once.
	if _, err := s.Unassign(podKey(1)); err != nil {
		t.Fatal(err)
	}
	if w := cp.written(); len(w) != 3 || len(w[2].Allocations) != 2 {
		t.Fatalf("writes %v, want a third with 2 allocations", allocCounts(w))
	}
	err := testutil.Eventually(context.Background(), 10*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > base {
			return fmt.Errorf("%d goroutines, %d before the store", n, base)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
