package datastore

import "net/netip"

// diff updates the state to f and returns what changed; ok is false when
// f holds an address twice (replace writes such a file whole).
//
// It compares f with the last File written position by position and
// looks at the state only where they differ: the store changes its lists
// in a few places per write (an append, a swap with the last entry, a
// heap sift), and names them (f.changes, changes.go), so a write costs
// O(changes) comparisons and map work; a File that names none costs
// O(entries) cheap comparisons. An address that left a position and was
// not put anywhere else in f is gone: every address of the last File is
// at one position only (the state holds no duplicate), so if f still
// holds it, it is at a position that changed, where put marked it.
//
// Members this version does not know (unknown.go) have no place in a log
// record: a File whose top-level ones changed, or that sets an entry
// carrying some, is not ok either (written whole).
func (c *LogCheckpointer) diff(f File) (b logBatch, ok bool) {
	if f.extra != c.extra {
		return b, false
	}
	unknown := false
	c.mark++
	m := c.mark
	var gone []netip.Addr
	// put records e at addr: changed when it differs from what the log
	// holds, dup when f holds addr at another position too (one visited
	// in this diff, or the unchanged one the state remembers).
	put := func(addr netip.Addr, e logEntry) (changed, dup bool) {
		old, had := c.state[addr]
		if had && (old.mark == m || old.pos != e.pos && holdsAt(f, old.pos, addr)) {
			return false, true
		}
		e.mark = m
		c.state[addr] = e
		return !had || !old.same(e), false
	}
	alloc := func(i int) (dup bool) {
		a := f.Allocations[i]
		if i < len(c.prevAllocs) {
			if c.prevAllocs[i] == a {
				return false
			}
			gone = append(gone, c.prevAllocs[i].Addr)
		}
		changed, dup := put(a.Addr, logEntry{key: a.Key, meta: a.Meta, at: unixNano(a.AssignedAt), extra: a.extra, pos: allocPos(i)})
		if changed {
			b.Set = append(b.Set, jsonAllocationOf(a))
			unknown = unknown || a.extra != (kept{})
		}
		return dup
	}
	cool := func(i int) (dup bool) {
		co := f.Cooling[i]
		if i < len(c.prevCool) {
			if c.prevCool[i] == co {
				return false
			}
			gone = append(gone, c.prevCool[i].Addr)
		}
		changed, dup := put(co.Addr, logEntry{cooling: true, at: unixNano(co.UnassignedAt), pos: coolPos(i)})
		if changed {
			jc := jsonCooling{UnassignedTimestamp: unixNano(co.UnassignedAt)}
			setAddr(&jc.IPv4, &jc.IPv6, co.Addr)
			b.Cool = append(b.Cool, jc)
		}
		return dup
	}
	named := c.named(f)
	var changedAllocs, changedCool []int32
	if named {
		changedAllocs, changedCool = f.changes.allocs, f.changes.cool
	}
	if visit(len(f.Allocations), len(c.prevAllocs), named, changedAllocs, alloc) ||
		visit(len(f.Cooling), len(c.prevCool), named, changedCool, cool) || unknown {
		return b, false
	}
	for i := len(f.Allocations); i < len(c.prevAllocs); i++ {
		gone = append(gone, c.prevAllocs[i].Addr)
	}
	for i := len(f.Cooling); i < len(c.prevCool); i++ {
		gone = append(gone, c.prevCool[i].Addr)
	}
	for _, a := range gone {
		if e, had := c.state[a]; had && e.mark != m {
			delete(c.state, a)
			b.Del = append(b.Del, a.String())
		}
	}
	c.keepPrev(f)
	return b, true
}

// visit calls at for every position of a list of n entries (whose last
// File had prev) that may have changed: those named, when named, and
// those past prev; else all. It stops at the first duplicate.
func visit(n, prev int, named bool, changed []int32, at func(int) bool) (dup bool) {
	from := 0
	if named {
		from = min(n, prev)
		for _, i := range changed {
			if int(i) < from && at(int(i)) {
				return true
			}
		}
	}
	for i := from; i < n; i++ {
		if at(i) {
			return true
		}
	}
	return false
}

// named tells whether f names its changes against the last File written.
func (c *LogCheckpointer) named(f File) bool {
	ch := f.changes
	return ch != nil && !ch.all && c.prevSeq != 0 && ch.base == c.prevSeq
}

// keepPrev copies f's lists for the next diff (Write must not keep f's):
// only what changed when f names it.
func (c *LogCheckpointer) keepPrev(f File) {
	if c.named(f) {
		c.prevAllocs = follow(c.prevAllocs, f.Allocations, f.changes.allocs)
		c.prevCool = follow(c.prevCool, f.Cooling, f.changes.cool)
	} else {
		c.prevAllocs = append(c.prevAllocs[:0], f.Allocations...)
		c.prevCool = append(c.prevCool[:0], f.Cooling...)
	}
	c.prevSeq = 0
	if f.changes != nil {
		c.prevSeq = f.changes.seq
	}
}

// allocPos and coolPos number the positions of a File's two lists in one
// space: allocations from 0 up, cooling entries from -1 down.
func allocPos(i int) int32 { return int32(i) }
func coolPos(i int) int32  { return -int32(i) - 1 }

// holdsAt tells whether f holds addr at pos.
func holdsAt(f File, pos int32, addr netip.Addr) bool {
	if pos >= 0 {
		return int(pos) < len(f.Allocations) && f.Allocations[pos].Addr == addr
	}
	i := int(-pos - 1)
	return i < len(f.Cooling) && f.Cooling[i].Addr == addr
}
