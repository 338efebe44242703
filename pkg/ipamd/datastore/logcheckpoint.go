package datastore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LogCheckpointer keeps upstream's checkpoint at Path and, beside it, a log
// (logformat.go): a write appends the entries it changed and syncs once, a
// single small sequential write, instead of replacing the whole file. The
// log is folded into Path in the background once it holds CompactBytes, or
// once no write came for IdleFold, and by Close; after a fold Path alone
// holds the whole state in upstream's format (a downgrade reads it).
//
// The first write after start, and every write after a failure, replaces
// Path whole and starts a new log, as its content on disk is then unknown.
// One Store uses it: Write is never called twice at once.
//
// Each log is made a little longer than CompactBytes, of zeros, before it
// takes a record (ckptFile.Preallocate): appends then write over zeros and
// their sync is a data write and a cache flush, with no file size or
// extent change to commit through the file system's journal (ext4; see
// BenchmarkConcurrentLogCommit). A log that outgrows its zeros is
// appended to as usual. A zero record length ends a log like any torn
// record (logformat.go).
type LogCheckpointer struct {
	Path string
	// CompactBytes is the log size that starts a fold (0: 1 MiB).
	CompactBytes int64
	// IdleFold folds the log once no write came for this long (0: 2 s;
	// negative: only by size and Close).
	IdleFold time.Duration
	// Log receives the errors of background folds (nil: slog.Default()).
	Log *slog.Logger

	fsys ckptFS
	// prealloc is the zeros a new log gets (0: CompactBytes and a
	// quarter, for the writes made while the fold runs; negative: none).
	prealloc int64

	mu    sync.Mutex
	state logState
	mark  uint32
	// prevAllocs and prevCool are copies of the last File written, which
	// diff compares the next one with (logdiff.go).
	prevAllocs []Allocation
	prevCool   []Cooling
	prevSeq    uint64    // the number of that File (changes.go), 0 if it had none
	extra      string    // the top-level members of that File this version does not know
	synced     bool      // state is what Path and the current log hold
	log        ckptFile  // the current log, open for appending
	gen        uint64    // its generation
	size       int64     // its bytes
	records    int       // its batch records
	folding    chan bool // non-nil while a fold runs; closed when it ends
	// The files the log builds on: a write fails once another file took
	// Path's or the log's place (the log would then apply to nothing).
	baseID, nextBaseID, logID fileID
	idle                      *time.Timer
	buf, payload              []byte
	folds                     atomic.Int64 // folds done, for the benchmark
}

// NewLogCheckpointer returns the log checkpointer of path.
func NewLogCheckpointer(path string) *LogCheckpointer {
	return &LogCheckpointer{Path: path, fsys: osFS{}}
}

func (c *LogCheckpointer) logger() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.Default()
}

// Read reads Path and replays its log; a missing Path gives an error
// wrapping fs.ErrNotExist (whatever log is left is stale then, and the
// first write removes it). A log damaged mid-way (logcorrupt.go) is set
// aside, so the next write does not remove it, and its error returned.
func (c *LogCheckpointer) Read() (File, error) {
	f, err := readCheckpoint(c.fsys, c.Path)
	var lc *LogCorruptError
	if errors.As(err, &lc) {
		aside := corruptName(lc.Log, time.Now())
		if rerr := c.fsys.Rename(lc.Log, aside); rerr != nil {
			return File{}, errors.Join(err, fmt.Errorf("setting the log aside: %w", rerr))
		}
		return File{}, fmt.Errorf("%w (set aside as %s)", err, aside)
	}
	return f, err
}

// Write makes f durable: appended to the log when the log holds the state
// before it, else by replacing Path whole.
func (c *LogCheckpointer) Write(f File) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.synced {
		b, ok := c.diff(f)
		if ok {
			if len(b.Set)+len(b.Cool)+len(b.Del) == 0 {
				return nil
			}
			err := c.append(b)
			if err == nil {
				c.afterAppend()
				return nil
			}
			// The log no longer builds on what is on disk: replace Path
			// whole, as a FileCheckpointer would.
			c.logger().Warn("checkpoint: appending to the log failed; replacing the file whole", "path", c.Path, "err", err)
		}
	}
	c.synced = false
	c.waitFold()
	if err := c.replace(f); err != nil {
		return fmt.Errorf("%w %s: %w", ErrCheckpoint, c.Path, err)
	}
	return nil
}

// append writes one batch record to the log and syncs it, once it has
// checked that the directory is writable and that Path and the log are
// still the files it wrote (a few stat calls, against an fdatasync).
func (c *LogCheckpointer) append(b logBatch) error {
	if err := c.fsys.Writable(dirOf(c.Path)); err != nil {
		return err
	}
	if id, err := c.fsys.FileID(c.Path); err != nil || (id != c.baseID && id != c.nextBaseID) {
		return errors.Join(errors.New("the checkpoint file was replaced or removed"), err)
	}
	if id, err := c.fsys.FileID(c.log.Name()); err != nil || id != c.logID {
		return errors.Join(errors.New("the checkpoint log was replaced or removed"), err)
	}
	payload, err := appendBatch(c.payload[:0], b)
	if err != nil {
		return err
	}
	c.payload = payload
	c.buf = appendRecord(c.buf[:0], payload)
	if _, err := c.log.Write(c.buf); err != nil {
		return err
	}
	if err := c.log.Sync(); err != nil {
		return err
	}
	c.size += int64(len(c.buf))
	c.records++
	return nil
}

func (c *LogCheckpointer) compactBytes() int64 {
	if c.CompactBytes <= 0 {
		return 1 << 20
	}
	return c.CompactBytes
}

// preallocate gives a new log its zeros. It is best effort: a log without
// them (a full disk) is appended to, only more slowly.
func (c *LogCheckpointer) preallocate(lf ckptFile) {
	size := c.prealloc
	if size == 0 {
		size = c.compactBytes() + c.compactBytes()/4
	}
	if size <= 0 {
		return
	}
	if err := lf.Preallocate(size); err != nil {
		c.logger().Debug("checkpoint: preallocating the log", "path", lf.Name(), "err", err)
	}
}

// afterAppend starts a fold when the log is big enough, and re-arms the
// idle fold.
func (c *LogCheckpointer) afterAppend() {
	if c.size >= c.compactBytes() && c.folding == nil {
		c.startFold()
	}
	idle := c.IdleFold
	switch {
	case idle < 0:
		return
	case idle == 0:
		idle = 2 * time.Second
	}
	if c.idle == nil {
		c.idle = time.AfterFunc(idle, c.foldLogged)
		return
	}
	c.idle.Reset(idle)
}

// startFold runs a fold in the background. Called with c.mu held.
func (c *LogCheckpointer) startFold() {
	done := c.markFolding()
	go func() {
		if err := c.endFold(done, c.fold()); err != nil {
			c.logger().Warn("checkpoint: folding the log into the file failed; the log keeps growing until a fold succeeds",
				"path", c.Path, "err", err)
		}
	}()
}

// markFolding records that a fold runs. Called with c.mu held.
func (c *LogCheckpointer) markFolding() chan bool {
	done := make(chan bool)
	c.folding = done
	return done
}

// endFold records that the fold that markFolding returned done for ended.
func (c *LogCheckpointer) endFold(done chan bool, err error) error {
	c.mu.Lock()
	c.folding = nil
	c.mu.Unlock()
	close(done)
	return err
}

// waitFold waits until no fold runs. Called with c.mu held; releases it
// while waiting.
func (c *LogCheckpointer) waitFold() {
	for c.folding != nil {
		done := c.folding
		c.mu.Unlock()
		<-done
		c.mu.Lock()
	}
}

// foldLogged folds the log now unless a fold runs or nothing is to fold.
func (c *LogCheckpointer) foldLogged() {
	c.mu.Lock()
	if c.folding != nil || !c.synced || c.records == 0 {
		c.mu.Unlock()
		return
	}
	c.startFold()
	c.mu.Unlock()
}

// fold writes the state into Path and drops the logs it covers. Writes go
// on meanwhile, into a new log that continues the current one, so
// whichever file a crash leaves at Path, its logs bring it to the last
// write (logformat.go): the new log is durable in the directory before it
// takes a record, its first record is durable before Path is replaced, and
// older logs go only once Path is.
func (c *LogCheckpointer) fold() error {
	c.mu.Lock()
	gen := c.gen + 1
	c.mu.Unlock()
	name := logName(c.Path, gen)
	_ = c.fsys.Remove(name) // a leftover of a fold that failed; no log chains to it
	lf, err := c.fsys.Create(name)
	if err != nil {
		return err
	}
	// The zeros are written and synced here, off the writes' path; the
	// first record then goes over them.
	c.preallocate(lf)
	lfID, err := c.fsys.FileID(name)
	if err == nil {
		err = c.fsys.SyncDir(dirOf(c.Path))
	}
	if err != nil {
		return errors.Join(err, discard(c.fsys, lf))
	}
	c.mu.Lock()
	if !c.synced || c.gen+1 != gen {
		c.mu.Unlock() // a write failed meanwhile: the next one replaces Path whole
		return discard(c.fsys, lf)
	}
	whole := c.state.file()
	whole.extra = c.extra
	data, err := appendFile(nil, whole)
	if err == nil {
		err = c.startLog(lf, gen, data, true)
	}
	if err == nil {
		// Durable before the log takes a write's record: unsynced, a crash
		// could keep that record and tear the first, which reads as
		// corruption, not a torn tail (logformat.go).
		err = lf.Sync()
	}
	var old ckptFile
	if err == nil {
		old = c.log
		c.log, c.logID = lf, lfID
	}
	c.mu.Unlock()
	if err != nil {
		return errors.Join(err, discard(c.fsys, lf))
	}
	if err := old.Close(); err != nil {
		c.logger().Debug("checkpoint: closing a folded log", "path", c.Path, "err", err)
	}
	err = writeAtomic(c.fsys, c.Path, data, func(id fileID) {
		c.mu.Lock()
		c.nextBaseID = id
		c.mu.Unlock()
	})
	c.mu.Lock()
	if err == nil {
		c.baseID = c.nextBaseID
	}
	c.nextBaseID = fileID{}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.removeLogsBefore(gen)
	c.folds.Add(1)
	return nil
}

// startLog writes lf's first record, naming data as its base, and makes
// lf the current log. Called with c.mu held.
func (c *LogCheckpointer) startLog(lf ckptFile, gen uint64, data []byte, follows bool) error {
	hdr, err := json.Marshal(logHeader{Log: logMagic, Base: baseHash(data), Follows: follows})
	if err != nil {
		return err
	}
	rec := appendRecord(nil, hdr)
	if _, err := lf.Write(rec); err != nil {
		return err
	}
	c.gen, c.size, c.records = gen, int64(len(rec)), 0
	return nil
}

// replace writes f whole into Path, with a new log based on it that
// continues no other. Called with c.mu held and no fold running.
func (c *LogCheckpointer) replace(f File) error {
	if c.log != nil {
		_ = c.log.Close() // its records are in f, or were never acknowledged
		c.log = nil
	}
	var err error
	if c.buf, err = appendFile(c.buf[:0], f); err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	gens, err := logGens(c.fsys, c.Path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	c.removeTempLeftovers()
	gen := c.gen + 1
	if len(gens) > 0 {
		gen = max(gen, gens[len(gens)-1]+1)
	}
	// The new log exists, durably, before Path changes: a crash in
	// between finds the old Path and, through the old logs, the old state.
	lf, err := c.fsys.Create(logName(c.Path, gen))
	if err != nil {
		return err
	}
	// Zeros first: an error of their (best-effort) sync must not be the
	// one that the sync of the first record then no longer reports.
	c.preallocate(lf)
	if err := c.startLog(lf, gen, c.buf, false); err != nil {
		return errors.Join(err, discard(c.fsys, lf))
	}
	if err := lf.Sync(); err != nil {
		return errors.Join(err, discard(c.fsys, lf))
	}
	if err := writeAtomic(c.fsys, c.Path, c.buf, func(id fileID) { c.baseID = id }); err != nil {
		return errors.Join(err, discard(c.fsys, lf))
	}
	logID, err := c.fsys.FileID(lf.Name())
	if err != nil {
		return errors.Join(err, discard(c.fsys, lf))
	}
	c.removeLogsBefore(gen)
	st, ok := stateOf(f, c.mark)
	c.log, c.logID, c.state, c.synced = lf, logID, st, ok
	c.extra = f.extra
	c.keepPrev(f)
	return nil
}

// removeLogsBefore removes the logs older than gen, which no longer apply
// (best effort: a log left behind names a content Path no longer has, or
// is older than one that does).
func (c *LogCheckpointer) removeLogsBefore(gen uint64) {
	gens, err := logGens(c.fsys, c.Path)
	for _, g := range gens {
		if g < gen {
			err = errors.Join(err, c.fsys.Remove(logName(c.Path, g)))
		}
	}
	if err != nil {
		c.logger().Debug("checkpoint: removing old logs", "path", c.Path, "err", err)
	}
}

// removeTempLeftovers removes the temp files (<Path>.tmp*, ours or
// upstream's) of writes a killed process never renamed into place: no
// write of ours runs while replace does, so every such file is one.
// Best effort, like removeLogsBefore.
func (c *LogCheckpointer) removeTempLeftovers() {
	names, err := c.fsys.ReadDir(dirOf(c.Path))
	prefix := filepath.Base(c.Path) + ".tmp"
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			err = errors.Join(err, c.fsys.Remove(filepath.Join(dirOf(c.Path), n)))
		}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.logger().Debug("checkpoint: removing temp files of interrupted writes", "path", c.Path, "err", err)
	}
}

// discard closes and removes a log that never became current.
func discard(fsys ckptFS, lf ckptFile) error {
	return errors.Join(lf.Close(), fsys.Remove(lf.Name()))
}

// Close folds the log into Path, so Path alone holds the state (for a
// downgrade), and closes the log. A later Write starts over by replacing
// Path whole. No Write may run during Close.
func (c *LogCheckpointer) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle != nil {
		c.idle.Stop()
	}
	c.waitFold()
	var err error
	if c.synced && c.records > 0 {
		done := c.markFolding()
		c.mu.Unlock()
		err = c.endFold(done, c.fold())
		c.mu.Lock()
	}
	if c.log != nil {
		err = errors.Join(err, c.log.Close())
		if err == nil && c.records == 0 {
			// Folded: Path holds everything, the log only its first record.
			err = c.fsys.Remove(c.log.Name())
		}
		c.log = nil
	}
	c.synced = false
	if err != nil {
		return fmt.Errorf("%w %s: folding the log in: %w", ErrCheckpoint, c.Path, err)
	}
	return nil
}
