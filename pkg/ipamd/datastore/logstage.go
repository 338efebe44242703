package datastore

import (
	"errors"
	"fmt"
)

// Staged records (commit.go's Stager): Stage writes a batch's record to
// the log under the Store's lock and hands back its sync, which the Store
// runs with its lock released; the next batch's record may be written and
// synced while that sync still runs. A sync makes the whole log durable
// up to it (fdatasync covers every page of the file, whichever open file
// calls it), so a record is durable once its sync returned, and so are
// the records before it.
//
// Each log is open twice more, once for each of the two syncs that may
// run at once: a write-back error is reported once to each open file, so
// two syncs on one file could see one report between them, and one of
// them return success for a page that failed. After a failed sync the log
// takes no more records: the next write replaces the file whole.
//
// A fold takes the log's state only while no staged sync runs (holdStages),
// so the file it writes holds no record that may yet fail.

// Stage implements Stager.
func (c *LogCheckpointer) Stage(f File) (sync func() error, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.initCond()
	for c.holding > 0 {
		c.cond.Wait()
	}
	if !c.synced || c.syncers[0] == nil {
		return nil, false
	}
	if err := c.checkFiles(); err != nil {
		c.logger().Warn("checkpoint: the log no longer builds on the file; replacing the file whole", "path", c.Path, "err", err)
		c.synced = false
		return nil, false
	}
	b, ok := c.diff(f)
	if !ok {
		c.synced = false
		return nil, false
	}
	if len(b.Set)+len(b.Cool)+len(b.Del) == 0 {
		return func() error { return nil }, true
	}
	if err := c.writeRecord(b); err != nil {
		c.logger().Warn("checkpoint: appending to the log failed; replacing the file whole", "path", c.Path, "err", err)
		c.synced = false
		return nil, false
	}
	h := c.syncers[c.staged%2]
	c.staged++
	c.inflight++
	c.afterAppend()
	return func() error { return c.syncStaged(h) }, true
}

// syncStaged runs a staged record's sync on h.
func (c *LogCheckpointer) syncStaged(h ckptFile) error {
	err := h.Sync()
	c.mu.Lock()
	c.inflight--
	if err != nil {
		c.synced = false
	}
	c.cond.Broadcast()
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w %s: %w", ErrCheckpoint, c.Path, err)
	}
	return nil
}

// holdStages waits until no staged sync runs and holds new stages off
// until release is called. Called with c.mu held (as is release); c.mu
// is released while waiting.
func (c *LogCheckpointer) holdStages() (release func()) {
	c.initCond()
	c.holding++
	for c.inflight > 0 {
		c.cond.Wait()
	}
	return func() {
		c.holding--
		c.cond.Broadcast()
	}
}

func (c *LogCheckpointer) initCond() {
	if c.cond.L == nil {
		c.cond.L = &c.mu
	}
}

// openSyncers opens the log name for the syncs of staged records.
func openSyncers(fsys ckptFS, name string) ([2]ckptFile, error) {
	var hs [2]ckptFile
	for i := range hs {
		h, err := fsys.Reopen(name)
		if err != nil {
			return hs, errors.Join(err, closeFiles(hs[:i]...))
		}
		hs[i] = h
	}
	return hs, nil
}

// closeFiles closes the files that are open (non-nil).
func closeFiles(fs ...ckptFile) error {
	var err error
	for _, f := range fs {
		if f != nil {
			err = errors.Join(err, f.Close())
		}
	}
	return err
}
