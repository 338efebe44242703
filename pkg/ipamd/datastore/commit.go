package datastore

import (
	"errors"
	"fmt"
)

// Group commit: every change to the checkpoint's content joins the open
// batch; the caller then waits in await until a write holding its batch
// has finished. A caller that finds its batch open and room for a write
// becomes the writer: it closes the open batch and writes it, so changes
// arriving meanwhile collect in the next batch and share one sync.
//
// A Checkpointer that stages (a Stager: the log) writes the batch's record
// under mu, in batch order, and only its sync runs with mu released; the
// next batch may then stage and sync while this one's sync still runs
// (two at most), so a change that just missed a sync does not wait for it
// to end before its own starts. Batches still finish in order, and one
// whose sync failed fails every batch staged after it (its record follows
// one that may be lost). Any other write (a Checkpointer that does not
// stage, or a Stager that cannot: its first write, after a failure)
// copies the state and writes it whole with mu released, alone. All of
// it is Store state under Store.mu; a batch is only ever touched with mu
// held.

// Stager is a Checkpointer whose writes can overlap (LogCheckpointer).
type Stager interface {
	Checkpointer
	// Stage writes what f changes, in order after every earlier Stage and
	// Write, and returns the sync that makes it durable (safe to run
	// while the sync of the Stage before runs). ok false: f must be
	// written whole with Write, once no staged sync runs. It must not keep
	// f. Called with the Store's lock held, so it is cheap: no sync.
	Stage(f File) (sync func() error, ok bool)
}

// maxStaged is how many staged syncs may run at once.
const maxStaged = 2

// batch is the set of changes one checkpoint write makes durable.
type batch struct {
	// undo lists the batch's assignments, taken back if its write fails.
	undo []pendingAssign
	seq  uint64 // the write's place in the order writes finish in
	done bool
	err  error // the write's error, once done
}

// pendingAssign is an assignment not yet durable: the slot it created and
// the pending restored entry of the same key it replaced (nil: none).
type pendingAssign struct {
	key     Key
	sl      *slot
	dropped *Allocation
}

// errEarlierWrite fails a staged batch whose record follows a failed one.
var errEarlierWrite = errors.New("an earlier write of the log failed")

// await returns once a write holding b has finished, with that write's
// error. The caller holds s.mu; await releases it while waiting or writing
// and holds it again on return.
func (s *Store) await(b *batch) error {
	if s.nop {
		// Nothing is persisted, so every change is as durable as it gets
		// (and the in-memory path stays O(log n): no copy of the state).
		clear(b.undo)
		b.undo = b.undo[:0]
		return nil
	}
	for !b.done {
		// b not done and not open: a write holding it is in flight.
		if b != s.open || !s.write() {
			s.written.Wait()
		}
	}
	return b.err
}

// write makes the open batch durable, or returns false when it cannot
// start yet (as many writes in flight as may be, or a whole write waiting
// for the staged ones to end). Called with s.mu held; s.mu is released
// for the sync or the write only.
func (s *Store) write() bool {
	f := File{Version: CheckpointVersion, Allocations: s.allocs, Cooling: s.cool}
	if st, ok := s.cp.(Stager); ok && !s.whole && s.inflight < maxStaged {
		if sync, ok := st.Stage(f); ok {
			b := s.begin()
			s.mu.Unlock()
			err := sync()
			s.mu.Lock()
			s.finish(b, err, true)
			return true
		}
	}
	if s.inflight > 0 {
		return false
	}
	b := s.begin()
	s.whole = true
	// The copies are the writer's while it writes: Checkpointer.Write
	// runs without the lock, and no other write starts meanwhile.
	s.snapAllocs = append(s.snapAllocs[:0], s.allocs...)
	s.snapCool = append(s.snapCool[:0], s.cool...)
	f = File{Version: CheckpointVersion, Allocations: s.snapAllocs, Cooling: s.snapCool}
	s.mu.Unlock()
	err := s.cp.Write(f)
	s.mu.Lock()
	s.whole = false
	s.finish(b, err, false)
	return true
}

// begin closes the open batch for a write starting now.
func (s *Store) begin() *batch {
	b := s.open
	s.open = &batch{}
	b.seq = s.started
	s.started++
	s.inflight++
	return b
}

// finish records the end of b's write, once every batch begun before it
// has finished. On failure the batch's assignments are undone before
// anyone can see the store again, so no later write and no caller sees an
// address the file may not have; every other change stands (see
// Unassign) and the store is unpersisted until a write succeeds. Every
// failure wraps ErrCheckpoint, even from a Checkpointer that does not wrap
// it itself.
func (s *Store) finish(b *batch, err error, staged bool) {
	for s.finished != b.seq {
		s.written.Wait()
	}
	switch {
	case err != nil && staged:
		s.brokenBefore = s.started // every batch staged so far follows this one
	case err == nil && b.seq < s.brokenBefore:
		err = errEarlierWrite
	}
	if err != nil && !errors.Is(err, ErrCheckpoint) {
		err = fmt.Errorf("%w: write: %w", ErrCheckpoint, err)
	}
	s.unpersisted = err != nil
	if err != nil {
		for i := len(b.undo) - 1; i >= 0; i-- {
			s.undoAssign(b.undo[i])
		}
	} else {
		for _, u := range b.undo {
			if u.sl.batch == b {
				u.sl.batch = nil
			}
		}
	}
	b.undo = nil
	b.done, b.err = true, err
	s.finished++
	s.inflight--
	s.written.Broadcast()
}

// undoAssign takes back an assignment whose write failed, unless its key
// no longer holds that slot (a DEL or an eviction came first).
func (s *Store) undoAssign(u pendingAssign) {
	sl := u.sl
	if s.byKey[u.key] != sl || sl.allocIdx < 0 || sl.cidr == nil {
		return
	}
	c := sl.cidr
	s.removeAlloc(sl)
	c.release(sl.off)
	s.adjust(c, -1, 0)
	s.restoreDropped(u.dropped)
}

// restoreDropped puts back the pending restored entry an Assign replaced:
// pending again, or held in its CIDR should AddCIDR have brought that in
// meanwhile (unless another key took the address since).
func (s *Store) restoreDropped(a *Allocation) {
	if a == nil {
		return
	}
	c := s.cidrOf(a.Addr)
	var off uint64
	if c != nil {
		if off = offsetOf(c.prefix, a.Addr); c.used[off] != nil {
			return
		}
	}
	sl := &slot{addr: a.Addr, allocIdx: -1, coolIdx: -1}
	s.addAlloc(sl, *a)
	if c == nil {
		s.pending[a.Addr] = sl
		return
	}
	sl.cidr, sl.off = c, off
	c.used[off] = sl
	s.adjust(c, 1, 0)
}

// Persist rewrites the checkpoint from memory: after a failed write, a
// successful Persist makes the file match memory again.
func (s *Store) Persist() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.await(s.open)
}

// Unpersisted reports whether the last checkpoint write failed.
func (s *Store) Unpersisted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unpersisted
}
