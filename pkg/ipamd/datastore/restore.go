package datastore

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"slices"
)

// Restore re-establishes the allocations of a checkpoint. Call it once,
// after the ENIs and CIDRs have been loaded and before any Assign.
//
// An allocation isLive rejects is dropped (Stale). A live allocation whose
// address lies in a known CIDR holds it again (Restored), keeping its
// original timestamp, whatever the CIDR's class. A live allocation in no
// known CIDR is kept pending (Unknown): it stays in the checkpoint and is
// adopted when AddCIDR adds its CIDR. isLive nil keeps everything.
// Cooling entries still in their cooldown cool again (pending too when
// their CIDR is unknown), and so do the stale allocations' addresses,
// from now.
//
// Timestamps in the future (a clock set back, a hand-edited file) are
// clamped to now, so a cooldown lasts at most one period. An allocation
// with an empty key field can never be released by a DEL (every DEL
// carries all three) and is dropped (KeyLess).
//
// A wrong version, an invalid address, or two entries with the same address
// or the same key are errors and change nothing. The checkpoint is then
// rewritten; if that fails the restored state stays (it is what the file
// just read says, so the pods keep their addresses) and the error, wrapping
// ErrCheckpoint, is returned with the result; a later successful write
// (Persist) brings the file in line.
func (s *Store) Restore(f File, isLive func(Allocation) bool) (RestoreResult, error) {
	if err := checkFile(f); err != nil {
		return RestoreResult{}, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.allocs) > 0 || len(s.cool) > 0 {
		return RestoreResult{}, fmt.Errorf("%w: restore into a store already holding %d allocations and %d cooling addresses",
			ErrInvalidArgument, len(s.allocs), len(s.cool))
	}
	now := s.now()
	s.fileExtra = f.extra
	var res RestoreResult
	for _, a := range f.Allocations {
		if a.Key.keyLess() {
			res.KeyLess = append(res.KeyLess, a)
			continue
		}
		if a.AssignedAt.After(now) {
			a.AssignedAt = now
			res.Clamped++
		}
		if isLive != nil && !isLive(a) {
			res.Stale = append(res.Stale, a)
			continue
		}
		sl := &slot{addr: a.Addr, allocIdx: -1, coolIdx: -1}
		s.addAlloc(sl, a)
		c := s.cidrOf(a.Addr)
		if c == nil {
			s.pending[a.Addr] = sl
			res.Unknown = append(res.Unknown, a)
			continue
		}
		sl.cidr, sl.off = c, offsetOf(c.prefix, a.Addr)
		c.used[sl.off] = sl
		s.adjust(c, 1, 0)
		res.Restored = append(res.Restored, a)
	}
	if s.cooldown > 0 {
		// A stale pod is gone without a DEL reaching ipamd: its address
		// cools from now, as its DEL's would have (the DEL released
		// nothing), so no new pod inherits its conntrack and policy
		// state. The loop skips an address a live entry holds.
		cooling := f.Cooling
		if len(res.Stale) > 0 {
			cooling = slices.Clone(f.Cooling)
			for _, a := range res.Stale {
				cooling = append(cooling, Cooling{Addr: a.Addr, UnassignedAt: now})
			}
		}
		for _, cl := range cooling {
			if cl.UnassignedAt.After(now) {
				cl.UnassignedAt = now
				res.Clamped++
			}
			if !cl.Addr.IsValid() || !now.Before(cl.UnassignedAt.Add(s.cooldown)) || s.pending[cl.Addr] != nil {
				continue
			}
			c := s.cidrOf(cl.Addr)
			if c == nil {
				// Its CIDR may come back (IMDS lag): keep cooling, pending.
				sl := &slot{addr: cl.Addr, allocIdx: -1, coolIdx: -1}
				s.pending[cl.Addr] = sl
				s.pendingCool++
				s.coolPush(sl, cl)
				res.UnknownCooling = append(res.UnknownCooling, cl.Addr)
				continue
			}
			off := offsetOf(c.prefix, cl.Addr)
			if c.used[off] != nil {
				continue // assigned again (or listed twice): the allocation wins
			}
			sl := &slot{cidr: c, off: off, addr: cl.Addr, allocIdx: -1, coolIdx: -1}
			c.used[off] = sl
			s.coolPush(sl, cl)
			s.adjust(c, 0, 1)
		}
	}
	if err := s.await(s.open); err != nil {
		return res, fmt.Errorf("restore: restored, not yet persisted: %w", err)
	}
	return res, nil
}

// Load reads the store's checkpointer and restores it (see Restore). No
// checkpoint means a fresh node: an empty result and no error.
func (s *Store) Load(isLive func(Allocation) bool) (RestoreResult, error) {
	f, err := s.cp.Read()
	if errors.Is(err, fs.ErrNotExist) {
		return RestoreResult{}, nil
	}
	if err != nil {
		return RestoreResult{}, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	if err := checkFile(f); err != nil {
		return RestoreResult{}, fmt.Errorf("%w: %w", ErrUnreadable, err)
	}
	return s.Restore(f, isLive)
}

// checkFile checks the version and the entries.
func checkFile(f File) error {
	if f.Version != CheckpointVersion {
		return fmt.Errorf("%w: unsupported version %q (want %q)", ErrCheckpoint, f.Version, CheckpointVersion)
	}
	if err := checkEntries(f); err != nil {
		return fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	return nil
}

// checkEntries rejects allocations without an address and two allocations
// with the same address or the same key.
func checkEntries(f File) error {
	byAddr := make(map[netip.Addr]int, len(f.Allocations))
	byKey := make(map[Key]int, len(f.Allocations))
	for i, a := range f.Allocations {
		if !a.Addr.IsValid() {
			return fmt.Errorf("allocation %d (%s) has no address", i, a.Key)
		}
		if a.Key.keyLess() {
			continue // dropped by Restore, so it may repeat
		}
		if j, dup := byAddr[a.Addr]; dup {
			return fmt.Errorf("duplicate address %s in allocations %d (%s) and %d (%s)",
				a.Addr, j, f.Allocations[j].Key, i, a.Key)
		}
		if j, dup := byKey[a.Key]; dup {
			return fmt.Errorf("duplicate key %s in allocations %d (%s) and %d (%s)",
				a.Key, j, f.Allocations[j].Addr, i, a.Addr)
		}
		byAddr[a.Addr], byKey[a.Key] = i, i
	}
	return nil
}
