// Package logfile is the rotating log file of ipamd and the CNI plugins:
// created 0600, rotated by size, old copies compressed (when Options.Compress
// says how: pkg/logfile/gzbackup) and pruned by count and age, with
// upstream's defaults (docs/compatibility.md, "Log files").
//
// It imports only the standard library, and no compression, so the
// plugin's import graph stays small. Several short-lived plugin processes
// may append to one file; lock.go keeps their writes and rotations apart.
package logfile

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Upstream's rotation of every log file it writes.
const (
	DefaultMaxSize    = 100 << 20 // bytes
	DefaultMaxBackups = 5
	DefaultMaxAge     = 30 * 24 * time.Hour
)

// DefaultTidyAfter is longer than any plugin call (aws-cni's ADD deadline
// is 20 s): only a daemon's Writer tidies (see tidy).
const DefaultTidyAfter = time.Minute

// Mode of the log file and its backups: pod names and addresses are not
// for every local user.
const Mode os.FileMode = 0o600

// backupTimeFormat is part of a backup's name: <base>-<time><ext>[.gz].
const backupTimeFormat = "2006-01-02T15-04-05.000"

// Options tune rotation; zero fields take the defaults.
type Options struct {
	MaxSize    int64         // rotate before a write would pass this size
	MaxBackups int           // rotated copies kept
	MaxAge     time.Duration // rotated copies older than this are removed
	// Compress writes <backup>.gz from a rotated copy, in the background
	// after the rotation; the plain copy is removed once it succeeds. Nil
	// keeps rotated copies as plain text.
	Compress func(backup string) error
	// TidyAfter: a Writer still open this long after Open prunes and
	// compresses the backups already there, once (see tidy). Zero takes
	// DefaultTidyAfter.
	TidyAfter time.Duration
	// ModeWarnedWithin: when > 0, the warning about a refused chmod is
	// skipped if the file's last ModeWarnedWithin bytes already hold one.
	// A plugin's Writer lives for one call, so "once per Writer" would
	// be once per ADD/DEL; the file is the only memory it has (see
	// warnedInTail).
	ModeWarnedWithin int64
	// NoModeWarning: a refused chmod is not reported at all, for a
	// writer whose logger filters warnings out (a plugin at error level).
	NoModeWarning bool
	Now           func() time.Time
}

func (o Options) withDefaults() Options {
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxBackups <= 0 {
		o.MaxBackups = DefaultMaxBackups
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultMaxAge
	}
	if o.TidyAfter <= 0 {
		o.TidyAfter = DefaultTidyAfter
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Writer appends to a log file and rotates it. It is safe for concurrent
// use; the mutex guards every field below it.
type Writer struct {
	path   string
	opts   Options
	opened time.Time // for afterRotate: a Writer younger than TidyAfter is a plugin's

	mu     sync.Mutex
	f      *os.File    // nil after a failed reopen: the next write tries again
	fd     int         // f's descriptor, for flock
	fi     os.FileInfo // f's identity, to tell it from a file put at path since
	closed bool
	// special: the path is not a regular file (see open); no rotation.
	special bool
	// modeWarned: a refused chmod has been reported (once per Writer).
	modeWarned bool
	size       int64
	// lockTimedOut: when a wait for the file's lock last timed out; zero
	// once the lock was taken since (see lockOrSkip).
	lockTimedOut time.Time
	bg           sync.WaitGroup // compression and pruning after a rotation, tidy
	tidyTimer    *time.Timer

	// bgMu serialises the background work on backups, so two passes never
	// compress one backup at once.
	bgMu sync.Mutex
}

// Open opens (creating 0600 if needed) the log file at path for appending.
// An existing file is tightened to 0600, or, where chmod is refused, used
// as it is after one warning line. A path that is not a regular file
// (a device such as /dev/null, a FIFO) is only written to.
func Open(path string, opts Options) (*Writer, error) {
	w := &Writer{path: path, opts: opts.withDefaults(), opened: time.Now()}
	if err := w.open(); err != nil {
		return nil, err
	}
	if !w.special {
		w.bg.Add(1)
		w.tidyTimer = time.AfterFunc(w.opts.TidyAfter, func() {
			defer w.bg.Done()
			w.tidy()
		})
	}
	return w, nil
}

// open opens the file, making its directory first: at a rotation too, so
// a log directory removed while we run is made again, as upstream's
// rotating logger does.
func (w *Writer) open() error {
	if err := os.MkdirAll(filepath.Dir(w.path), 0o755); err != nil {
		return fmt.Errorf("log file %q: %w", w.path, err)
	}
	f, err := os.OpenFile(w.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, Mode)
	if err != nil {
		return fmt.Errorf("log file %q: %w", w.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close() // the stat error is the one to report
		return fmt.Errorf("log file %q: %w", w.path, err)
	}
	// A device, FIFO or a link to one (/dev/null to silence a plugin,
	// /dev/stderr) is written through, never chmodded or rotated: both
	// would change a file that is not ours.
	w.special = !st.Mode().IsRegular()
	if w.special {
		w.f, w.size = f, 0
		return nil
	}
	w.f, w.fd, w.fi, w.size = f, int(f.Fd()), st, st.Size()
	if st.Mode().Perm() != Mode {
		// Created by an older version (or upstream's predecessor) with a
		// wider mode. Where chmod is refused (append-only attribute,
		// another owner) the file is used as it is, as upstream's logger
		// uses every existing file: a log must not keep ipamd from starting.
		if err := chmodFile(f, Mode); err != nil && !w.modeWarned && !w.opts.NoModeWarning {
			w.modeWarned = true
			if !w.warnedInTail(st.Size()) {
				w.warnMode(st.Mode().Perm(), err)
			}
		}
	}
	return nil
}

// chmodFile is a seam for tests on machines where no file refuses chmod.
var chmodFile = (*os.File).Chmod

// warnMode writes one warning line, in the JSON format of the loggers
// writing here, into the file whose mode could not be tightened: the place
// its reader looks. Called with the file open, before any other write.
func (w *Writer) warnMode(perm os.FileMode, err error) {
	var b bytes.Buffer
	slog.New(slog.NewJSONHandler(&b, nil)).Warn(modeWarning,
		"file", w.path, "mode", fmt.Sprintf("%#o", perm), "error", err.Error())
	n, _ := w.f.Write(b.Bytes()) // a failed write shows in the next one
	w.size += int64(n)
}

// Write appends p, rotating first when p would take the file past MaxSize.
// A single write larger than MaxSize goes into a fresh file whole.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return 0, errors.New("log file " + w.path + ": closed")
	}
	if err := w.lockCurrent(); err != nil {
		return 0, err
	}
	defer w.unlock()
	// A loop: other processes may have filled the new file before this
	// one locked it.
	for !w.special && w.size > 0 && w.size+int64(len(p)) > w.opts.MaxSize {
		renamed, err := w.rotate()
		if err != nil && renamed {
			return 0, err // no new file could be opened
		}
		if err != nil {
			// Not renamed (the append-only attribute refuses it to
			// everyone): the line goes in past MaxSize, not lost.
			n, werr := w.f.Write(p)
			w.size += int64(n)
			return n, errors.Join(err, werr)
		}
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}

// Close closes the file and waits for a pending compression.
func (w *Writer) Close() error {
	w.mu.Lock()
	var err error
	if w.f != nil {
		err = w.f.Close()
		w.f = nil
	}
	w.closed = true
	w.mu.Unlock()
	if w.tidyTimer != nil && w.tidyTimer.Stop() {
		w.bg.Done() // the tidy never started
	}
	w.bg.Wait()
	return err
}

// rotate renames the current file, locked and checked by lockCurrent, to a
// timestamped backup and locks the file now at the path. Unless renamed,
// the current file is still open and locked. Called with mu held.
func (w *Writer) rotate() (renamed bool, err error) {
	backup := w.freeBackupName(w.opts.Now())
	if err := renameFile(w.path, backup); err != nil {
		return false, fmt.Errorf("log file %q: rotate: %w", w.path, err)
	}
	w.bg.Add(1)
	go func() {
		defer w.bg.Done()
		w.afterRotate(backup)
	}()
	// Closing releases the lock: a writer waiting for it finds the file
	// renamed and opens the new one.
	_ = w.f.Close() // all writes are done; a close error changes nothing
	w.f = nil
	return true, w.lockCurrent()
}

// renameFile is a seam for tests on machines where no file refuses rename.
var renameFile = os.Rename

// freeBackupName names a backup after t, moved on by a millisecond while
// the name is taken (rotations in quick succession must not overwrite).
func (w *Writer) freeBackupName(t time.Time) string {
	for {
		name := w.backupName(t)
		_, errPlain := os.Lstat(name)
		_, errGz := os.Lstat(name + ".gz")
		if errors.Is(errPlain, os.ErrNotExist) && errors.Is(errGz, os.ErrNotExist) {
			return name
		}
		t = t.Add(time.Millisecond)
	}
}

func (w *Writer) backupName(t time.Time) string {
	dir, base := filepath.Split(w.path)
	ext := filepath.Ext(base)
	return filepath.Join(dir, strings.TrimSuffix(base, ext)+"-"+t.UTC().Format(backupTimeFormat)+ext)
}

// afterRotate compresses the new backup, prunes old ones and compresses
// the plain ones left over (compress.go). Errors are not fatal to logging
// and have nowhere better to go than the next backup attempt.
func (w *Writer) afterRotate(backup string) {
	w.bgMu.Lock()
	defer w.bgMu.Unlock()
	if w.opts.Compress != nil {
		w.compressBackup(backup, true)
	}
	w.prune()
	if w.opts.Compress != nil {
		limit := 0
		if time.Since(w.opened) < w.opts.TidyAfter {
			limit = leftoversPerRotation
		}
		w.compressLeftovers(limit)
	}
}

// tidy does once what upstream's logger does at every open: prune, then
// compress the plain backups left by a process that stopped before it
// compressed them (upstream's plugin often does). Only a Writer open past
// TidyAfter gets here, a daemon's: a plugin process is gone by then and
// pays no directory read on a pod's ADD (bench/README.md, "Where a
// churn pair's CPU goes"); its leftovers are gzipped at its rotations,
// one each (leftoversPerRotation).
func (w *Writer) tidy() {
	w.bgMu.Lock()
	defer w.bgMu.Unlock()
	w.prune()
	if w.opts.Compress != nil {
		w.compressLeftovers(0)
	}
}

// prune removes backups beyond MaxBackups (oldest first) and older than
// MaxAge.
func (w *Writer) prune() {
	backups := w.Backups()
	cutoff := w.opts.Now().Add(-w.opts.MaxAge)
	for i, b := range backups {
		t, ok := w.backupTime(b)
		if i >= w.opts.MaxBackups || ok && t.Before(cutoff) {
			// Best effort; retried at the next rotation. A plain
			// backup's .gz is partial or being written: it goes too.
			_ = os.Remove(b)
			if !isGz(b) {
				_ = os.Remove(b + ".gz")
			}
		}
	}
}

// Backups lists the rotated copies of the file, newest first.
func (w *Writer) Backups() []string {
	dir, base := filepath.Split(w.path)
	ext := filepath.Ext(base)
	prefix := strings.TrimSuffix(base, ext) + "-"
	ents, err := os.ReadDir(filepath.Clean(dir))
	if err != nil {
		return nil
	}
	type backup struct {
		path string
		t    time.Time
	}
	var out []backup
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if plain, ok := strings.CutSuffix(p, ".gz"); ok {
			if _, err := os.Lstat(plain); err == nil {
				continue // partial or being written: the plain copy is the backup
			}
		}
		if t, ok := w.backupTime(p); ok {
			out = append(out, backup{p, t})
		}
	}
	slices.SortFunc(out, func(a, b backup) int { return b.t.Compare(a.t) })
	paths := make([]string, len(out))
	for i, b := range out {
		paths[i] = b.path
	}
	return paths
}

func isGz(p string) bool { return strings.HasSuffix(p, ".gz") }

func (w *Writer) backupTime(p string) (time.Time, bool) {
	base := filepath.Base(w.path)
	ext := filepath.Ext(base)
	name := strings.TrimSuffix(filepath.Base(p), ".gz")
	stamp, ok := strings.CutPrefix(name, strings.TrimSuffix(base, ext)+"-")
	if !ok {
		return time.Time{}, false
	}
	stamp, ok = strings.CutSuffix(stamp, ext)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(backupTimeFormat, stamp)
	return t, err == nil
}
