package datastore

import (
	"errors"
	"fmt"
	"sync"
)

// Group commit: every change to the checkpoint's content joins the open
// batch; the caller then waits in await until a write holding its batch
// has finished. A caller that finds no writer running starts one
// (writeLoop): it closes the open batch, copies the state under the lock,
// and writes the copy with the lock released, so changes arriving
// meanwhile collect in the next batch and share one write (and its sync);
// it goes on with that batch at once and ends when no caller waits. All
// of it is Store state under Store.mu; a batch is only ever touched with
// mu held.

// batch is the set of changes one checkpoint write makes durable.
type batch struct {
	// undo lists the batch's assignments, taken back if its write fails.
	undo []pendingAssign
	done bool
	err  error // the write's error, once done
	// wanted: a caller waits for this batch, so it is to be written
	// (even with no change in it: Persist).
	wanted bool
	// ready wakes this batch's callers once done (its L is Store.mu).
	ready sync.Cond
}

// newBatch returns an empty batch whose callers wait on s.mu.
func (s *Store) newBatch() *batch {
	b := &batch{}
	b.ready.L = &s.mu
	return b
}

// pendingAssign is an assignment not yet durable: the slot it created and
// the pending restored entry of the same key it replaced (nil: none).
type pendingAssign struct {
	key     Key
	sl      *slot
	dropped *Allocation
}

// await returns once a write holding b has finished, with that write's
// error. The caller holds s.mu; await releases it while waiting and holds
// it again on return.
func (s *Store) await(b *batch) error {
	if s.nop {
		// Nothing is persisted, so every change is as durable as it gets
		// (and the in-memory path stays O(log n): no copy of the state).
		clear(b.undo)
		b.undo = b.undo[:0]
		return nil
	}
	if b.done {
		return b.err
	}
	if b == s.open {
		b.wanted = true
	}
	if !s.writing {
		s.writing = true
		go s.writeLoop()
	}
	for !b.done {
		b.ready.Wait()
	}
	return b.err
}

// writeLoop writes batches, one after another, for as long as a caller
// waits for the open one, then ends. The next batch's write starts as soon
// as the last one's sync returns, on a goroutine already running: no
// waiting caller has to be woken and scheduled to start it, and no
// caller's own reply waits for it (bench/README.md, figure 21).
func (s *Store) writeLoop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.open.wanted {
		s.write()
	}
	s.writing = false
}

// write makes the open batch durable. Called by writeLoop with s.mu held;
// s.mu is released for the I/O only. On failure the batch's
// assignments are undone before anyone can see the store again, so no
// later write and no caller sees an address the file may not have; every
// other change stands (see Unassign) and the store is unpersisted until a
// write succeeds. Every failure wraps ErrCheckpoint, even from a
// Checkpointer that does not wrap it itself.
func (s *Store) write() {
	b := s.open
	s.open = s.newBatch()
	// The copies are the writer's while s.writing: Checkpointer.Write
	// runs without the lock, and writeLoop is the only writer.
	f := s.snapshot()
	s.mu.Unlock()
	err := s.cp.Write(f)
	s.mu.Lock()
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
	b.ready.Broadcast()
}

// undoAssign takes back an assignment whose write failed, unless its key
// no longer holds that slot (a DEL or an eviction came first).
func (s *Store) undoAssign(u pendingAssign) {
	sl := u.sl
	if s.byKey[u.key] != sl || sl.allocIdx < 0 {
		return
	}
	if sl.cidr == nil {
		// Quarantined by an eviction since: the ADD failed, so no pod
		// has the address.
		s.removeAlloc(sl)
		delete(s.pending, sl.addr)
		s.restoreDropped(u.dropped)
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
