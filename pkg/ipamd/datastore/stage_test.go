package datastore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// stageCheckpointer stages every File; each staged sync blocks until the
// test sends its result on the channel of that stage (in stage order).
type stageCheckpointer struct {
	gateCheckpointer

	mu      sync.Mutex
	results []chan error // one per stage
	running int          // staged syncs waiting for their result
	most    int          // the most that ever ran at once
}

func (c *stageCheckpointer) Stage(File) (func() error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res := make(chan error, 1)
	c.results = append(c.results, res)
	return func() error {
		c.mu.Lock()
		c.running++
		c.most = max(c.most, c.running)
		c.mu.Unlock()
		err := <-res
		c.mu.Lock()
		c.running--
		c.mu.Unlock()
		return err
	}, true
}

// waitRunning waits until n staged syncs run and returns their result
// channels, first staged first.
func (c *stageCheckpointer) waitRunning(t *testing.T, n int) []chan error {
	t.Helper()
	var out []chan error
	err := testutil.Eventually(context.Background(), 10*time.Second, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.running != n {
			return fmt.Errorf("%d staged syncs run, want %d", c.running, n)
		}
		out = append([]chan error(nil), c.results[len(c.results)-n:]...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A change that arrives while a staged sync runs stages and syncs at once
// (two syncs run together, no more), but batches finish in order: when
// the first sync fails, the second batch fails too although its own sync
// succeeded first (its record follows one that may be lost), and both
// assignments are undone. The next change is written on its own.
func TestStagedSyncsOverlapAndFinishInOrder(t *testing.T) {
	cp := &stageCheckpointer{}
	s, err := New(Options{Mode: ModePrefixIPv4, CooldownPeriod: time.Minute, Checkpointer: cp, Now: newClock().now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddENI(ENI{ID: "eni-0", IsPrimary: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddCIDR("eni-0", pfx("10.0.0.0/28")); err != nil {
		t.Fatal(err)
	}
	done := make(chan assignResult, 3)
	assign := func(i int) {
		a, err := s.Assign(podKey(i), podMeta(i))
		done <- assignResult{i, a, err}
	}
	go assign(0)
	first := cp.waitRunning(t, 1)[0]
	go assign(1)
	second := cp.waitRunning(t, 2)[1]
	go assign(2) // no third sync: it waits for a batch to finish
	waitAssigned(t, s, 3)

	second <- nil
	cp.waitRunning(t, 1)
	first <- errors.New("disk gone")
	for range 2 {
		r := <-done
		if r.i == 2 || !errors.Is(r.err, ErrCheckpoint) {
			t.Fatalf("Assign %d: %v (got %s); want pods 0 and 1 to fail with ErrCheckpoint", r.i, r.err, r.a.Addr)
		}
	}
	third := cp.waitRunning(t, 1)[0]
	third <- nil
	if r := <-done; r.i != 2 || r.err != nil {
		t.Fatalf("Assign %d: %v, want pod 2 written", r.i, r.err)
	}
	got := s.AllocatedIPs()
	if len(got) != 1 || got[0].Key != podKey(2) {
		t.Fatalf("the store holds %v, want only pod 2", got)
	}
	if cp.most != 2 {
		t.Fatalf("at most %d staged syncs ran at once, want 2", cp.most)
	}
	checkInvariants(t, s)
}

// paceSyncs lets the syncs of m go one at a time: at once when two wait,
// else once one has waited a few ticks with no second one coming (the
// ticks only pace the test: a second change then has time to stage). It
// runs until stop is closed.
func paceSyncs(m *memFS, stop <-chan struct{}) {
	tick := time.NewTicker(100 * time.Microsecond)
	defer tick.Stop()
	alone := 0
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		m.mu.Lock()
		w, gate := m.waiting, m.syncs
		m.mu.Unlock()
		if w == 0 || (w == 1 && alone < 3) {
			alone += w
			continue
		}
		alone = 0
		select {
		case gate <- struct{}{}:
		case <-m.dead:
		case <-stop:
			return
		}
	}
}

// concurrentChurn runs clients at once, each ADDing a pod of its own and
// then DELeting its previous one (so each holds one acknowledged pod while
// it changes another), until ops changes each or a failure; it returns
// what the acknowledged changes hold and the keys whose change was in
// flight.
func concurrentChurn(s *Store, clients, ops int) (held map[Key]netip.Addr, inFlight map[Key]bool, failed bool) {
	var mu sync.Mutex
	held, inFlight = map[Key]netip.Addr{}, map[Key]bool{}
	// change runs one change and records its outcome; false: it failed.
	change := func(k Key, do func() (netip.Addr, error)) bool {
		addr, err := do()
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			inFlight[k], failed = true, true
			return false
		case addr.IsValid():
			held[k] = addr
		default:
			delete(held, k)
		}
		return true
	}
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for n := range ops / 2 {
				i := c*1000 + n
				k := podKey(i)
				if !change(k, func() (netip.Addr, error) { a, err := s.Assign(k, podMeta(i)); return a.Addr, err }) {
					return
				}
				if n == 0 {
					continue
				}
				prev := podKey(i - 1)
				if !change(prev, func() (netip.Addr, error) { _, err := s.Unassign(prev); return netip.Addr{}, err }) {
					return
				}
			}
		})
	}
	wg.Wait()
	return held, inFlight, failed
}

// checkRecoveredSet is checkRecovered with several changes in flight.
func checkRecoveredSet(t *testing.T, img *memFS, held map[Key]netip.Addr, inFlight map[Key]bool) File {
	t.Helper()
	f, err := readCheckpoint(img, memPath)
	if errors.Is(err, fs.ErrNotExist) && len(held) == 0 {
		return f
	}
	if err != nil {
		t.Fatalf("reading what the crash left (%v): %v", img.names(), err)
	}
	got := map[Key]netip.Addr{}
	for _, a := range f.Allocations {
		got[a.Key] = a.Addr
	}
	for k, addr := range held {
		if got[k] != addr && !(inFlight[k] && !got[k].IsValid()) {
			t.Fatalf("acknowledged %s at %s, recovered %v (files %v)", k, addr, got[k], img.names())
		}
	}
	for k := range got {
		if _, ok := held[k]; !ok && !inFlight[k] {
			t.Fatalf("recovered %s, which no acknowledged change holds (files %v)", k, img.names())
		}
	}
	return f
}

// A crash (power loss) at every step while three clients ADD and DEL at
// once, so that a batch's record is written and synced while the sync of
// the batch before still runs, and folds run among them, loses no
// acknowledged change and brings back no released one: only the changes
// in flight may go either way, whatever part of the unsynced data the
// crash keeps. A restart from what is left writes and reads back again.
func TestLogCheckpointCrashWithOverlappingSyncs(t *testing.T) {
	const clients, ops = 3, 14
	run := func(m *memFS) (map[Key]netip.Addr, map[Key]bool, bool) {
		s, lc := logStore(t, m, memPath, 900)
		if err := s.Persist(); err != nil {
			return map[Key]netip.Addr{}, nil, true
		}
		stop := make(chan struct{})
		m.mu.Lock()
		m.syncs = make(chan struct{})
		m.mu.Unlock()
		go paceSyncs(m, stop)
		held, inFlight, failed := concurrentChurn(s, clients, ops)
		_ = lc.Close() // a fold may still wait for its syncs' turn
		close(stop)
		m.mu.Lock()
		m.syncs = nil
		m.mu.Unlock()
		return held, inFlight, failed
	}
	clean := newMemFS()
	if _, _, failed := run(clean); failed {
		t.Fatal("the run without a crash failed")
	}
	if clean.mostWaiting < 2 {
		t.Fatalf("at most %d syncs ran at once in the run without a crash, want 2", clean.mostWaiting)
	}
	total := clean.steps
	tears := map[string]struct {
		tear  func(int) int
		holes bool
	}{
		"lost":  {func(int) int { return 0 }, false},
		"holes": {func(n int) int { return n / 2 }, true},
		"kept":  {func(n int) int { return n }, false},
	}
	crashes, overlapped := 0, 0
	for name, tr := range tears {
		for k := 1; k <= total; k++ {
			m := newMemFS()
			m.crashAt, m.tear, m.holes = k, tr.tear, tr.holes
			held, inFlight, failed := run(m)
			if !failed {
				continue
			}
			crashes++
			if m.mostWaiting >= 2 {
				overlapped++
			}
			img := m.crashed()
			f := checkRecoveredSet(t, img, held, inFlight)
			s2, _ := logStore(t, img, memPath, 900)
			f.Version = CheckpointVersion
			if _, err := s2.Restore(f, nil); err != nil {
				t.Fatalf("%s at step %d: restart: %v", name, k, err)
			}
			if _, err := s2.Assign(podKey(9999), podMeta(9999)); err != nil {
				t.Fatalf("%s at step %d: ADD after restart: %v", name, k, err)
			}
		}
	}
	if overlapped == 0 {
		t.Fatal("no crash came after two syncs had run at once")
	}
	t.Logf("%d steps, %d crashes, %d of them after overlapping syncs", total, crashes, overlapped)
}
