package datastore

import (
	"slices"
	"sync/atomic"
)

// The store names, with each File it writes, the positions of its two
// lists that changed since the File it wrote before. Its lists change in
// a few places per write (an append, a swap with the last entry, a heap
// sift), so the writer's copy and the log's diff (logdiff.go) then cost
// O(changes), not O(entries): with 250 pods and a few hundred cooling
// addresses both were about 30 µs of every write, between two syncs on
// the path of every ADD (bench/README.md, figure 21).

// fileChanges tells a checkpointer where a File may differ from the one
// numbered base: at the listed positions of each list and past the
// shorter of the two lengths. Everywhere else the lists are equal.
type fileChanges struct {
	seq  uint64 // this File's number
	base uint64 // the File it differs from
	// all: the positions are not known (the first File, or too many
	// changes); compare everything.
	all          bool
	allocs, cool []int32 // sorted, each once
}

// fileSeq numbers the Files of every store, so that a checkpointer never
// applies positions to a File they were not taken against.
var fileSeq atomic.Uint64

// changeSet collects the positions changed since the last snapshot.
type changeSet struct {
	allocs, cool []int32
	all          bool
}

// markAlloc and markCool record a changed position of s.allocs or s.cool.
// Called with s.mu held, by every write to either list.
func (s *Store) markAlloc(i int) { s.mark(&s.changed.allocs, i) }
func (s *Store) markCool(i int)  { s.mark(&s.changed.cool, i) }

func (s *Store) mark(list *[]int32, i int) {
	if s.nop || s.changed.all {
		return
	}
	if len(s.changed.allocs)+len(s.changed.cool) > len(s.allocs)+len(s.cool)+64 {
		// More changes than entries (a restore, many writes failing):
		// copying everything is cheaper than listing them.
		s.changed = changeSet{all: true, allocs: s.changed.allocs[:0], cool: s.changed.cool[:0]}
		return
	}
	*list = append(*list, int32(i))
}

// snapshot brings the writer's copy of the lists (snapAllocs, snapCool)
// up to date and returns the File to write. Called by the writer with s.mu
// held; the File's lists and changes are the writer's until the next
// snapshot.
func (s *Store) snapshot() File {
	ch := &s.snapChanges
	ch.base, ch.seq = ch.seq, fileSeq.Add(1)
	ch.all = s.changed.all || ch.base == 0
	if ch.all {
		s.snapAllocs = append(s.snapAllocs[:0], s.allocs...)
		s.snapCool = append(s.snapCool[:0], s.cool...)
	}
	// The marks move to the File; the lists it had take the next ones.
	ch.allocs, s.changed.allocs = sortedOnce(s.changed.allocs), ch.allocs[:0]
	ch.cool, s.changed.cool = sortedOnce(s.changed.cool), ch.cool[:0]
	s.changed.all = false
	if !ch.all {
		s.snapAllocs = follow(s.snapAllocs, s.allocs, ch.allocs)
		s.snapCool = follow(s.snapCool, s.cool, ch.cool)
	}
	return File{Version: CheckpointVersion, Allocations: s.snapAllocs, Cooling: s.snapCool, extra: s.fileExtra, changes: ch}
}

func sortedOnce(p []int32) []int32 {
	slices.Sort(p)
	return slices.Compact(p)
}

// follow makes snap equal to live, where they can differ only at the
// positions in changed and past the shorter of the two.
func follow[T any](snap, live []T, changed []int32) []T {
	n := min(len(snap), len(live))
	for _, i := range changed {
		if int(i) < n {
			snap[i] = live[i]
		}
	}
	if len(snap) > len(live) {
		clear(snap[len(live):])
		return snap[:len(live)]
	}
	return append(snap, live[len(snap):]...)
}
