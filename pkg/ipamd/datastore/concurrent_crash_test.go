package datastore

import (
	"errors"
	"io/fs"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// paceSyncs lets each sync of m go once it has waited a few ticks, so
// that changes arriving meanwhile collect in the next batch (the ticks
// only pace the test). It runs until stop is closed.
func paceSyncs(m *memFS, stop <-chan struct{}) {
	tick := time.NewTicker(100 * time.Microsecond)
	defer tick.Stop()
	waited := 0
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		m.mu.Lock()
		w, gate := m.waiting, m.syncs
		m.mu.Unlock()
		if w == 0 || waited < 3 {
			waited += min(w, 1)
			continue
		}
		waited = 0
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
// once, so that changes share batches (group commit) and folds run among
// them, loses no acknowledged change and brings back no released one:
// only the changes in flight may go either way, whether the crash keeps
// none of the unsynced data or a part with a hole before it. A restart from what is left writes and
// reads back again.
func TestLogCheckpointCrashWithConcurrentClients(t *testing.T) {
	const clients, ops = 3, 10
	run := func(m *memFS) (map[Key]netip.Addr, map[Key]bool, bool, int64) {
		s, lc := logStore(t, m, memPath, 900)
		counted := &countingCheckpointer{Checkpointer: lc}
		s.cp = counted // counts the batches; Write passes through
		if err := s.Persist(); err != nil {
			return map[Key]netip.Addr{}, nil, true, 0
		}
		stop := make(chan struct{})
		m.mu.Lock()
		m.syncs = make(chan struct{})
		m.mu.Unlock()
		go paceSyncs(m, stop)
		held, inFlight, failed := concurrentChurn(s, clients, ops)
		_ = lc.Close() // a fold may still wait for its sync's turn
		close(stop)
		m.mu.Lock()
		m.syncs = nil
		m.mu.Unlock()
		return held, inFlight, failed, counted.writes.Load() - 1
	}
	clean := newMemFS()
	_, _, failed, batches := run(clean)
	if failed {
		t.Fatal("the run without a crash failed")
	}
	changes := int64(clients * (ops - 1))
	if batches >= changes {
		t.Fatalf("%d changes took %d batches: no batch held more than one change", changes, batches)
	}
	total := clean.steps
	tears := map[string]struct {
		tear  func(int) int
		holes bool
	}{
		"lost":  {func(int) int { return 0 }, false},
		"holes": {func(n int) int { return n / 2 }, true},
	}
	crashes := 0
	for name, tr := range tears {
		for k := 1; k <= total; k++ {
			m := newMemFS()
			m.crashAt, m.tear, m.holes = k, tr.tear, tr.holes
			held, inFlight, failed, _ := run(m)
			if !failed {
				continue
			}
			crashes++
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
	t.Logf("%d changes in %d batches without a crash; %d steps, %d crashes", changes, batches, total, crashes)
}
