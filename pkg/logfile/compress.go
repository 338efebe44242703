package logfile

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// A backup is gzipped by Options.Compress into <backup>.gz, and the plain
// copy removed once that succeeded. A process killed in between leaves the
// plain copy whole next to a partial .gz; the plain copy is then the
// backup, and whoever finds it gzips it anew (tidy, the next rotation). To
// tell that leftover from a backup another live process is gzipping right
// now, the gzipping process holds an open-file-description lock on the
// plain copy: the kernel drops it with the process. It is a fcntl lock, not
// the flock lock.go takes on the same file while it is the log, so a
// writer still holding the renamed file never waits for its compression.

// Linux's open-file-description lock commands (fcntl(2)); the syscall
// package does not name them.
const fOFDSetLk = 37

// compressBackup gzips the plain backup b and removes it. wait: the backup
// is this Writer's own, just rotated, and another process's lock on it is
// waited for up to lockWait; otherwise, or past that, one locked by another
// process is left to it. The wait is bounded because that process may be
// stopped while holding it, and Close waits for this. Errors leave the
// plain copy, the whole backup, for the next pass.
func (w *Writer) compressBackup(b string, wait bool) (gzipped bool) {
	// Read-write only because a write lock needs it; nothing is written.
	f, err := os.OpenFile(b, os.O_RDWR, 0)
	if err != nil {
		return false // removed since it was listed: pruned, or gzipped by another
	}
	defer func() { _ = f.Close() }() // nothing written; closing drops the lock
	var hold time.Duration
	if wait {
		hold = lockWait
	}
	if err := lockBackupBounded(f, hold); err != nil && !noOFDLocks(err) {
		return false // being gzipped by a live (or stopped) process
	}
	// Gzipped and removed by another process while this one waited?
	ours, errOurs := f.Stat()
	onDisk, errDisk := os.Stat(b)
	if errOurs != nil || errDisk != nil || !os.SameFile(ours, onDisk) {
		return false
	}
	if err := w.opts.Compress(b); err != nil {
		return false
	}
	_ = os.Remove(b) // the .gz is whole; a failed remove is redone next pass
	return true
}

// compressLeftovers gzips the plain backups no live process is gzipping:
// left by a process that stopped first, or by upstream's plugin; at most
// limit of them when limit > 0.
func (w *Writer) compressLeftovers(limit int) {
	n := 0
	for _, b := range w.Backups() {
		if limit > 0 && n >= limit {
			return
		}
		if !isGz(b) && w.compressBackup(b, false) {
			n++
		}
	}
}

// leftoversPerRotation: a Writer younger than TidyAfter, a plugin's, gzips
// at most this many leftovers when it rotates. The plugin's Close waits
// for them and each may be MaxSize (100 MB) of text, paid by the one ADD
// that rotated; ipamd's tidy does not cover the plugins' logs, so the rest
// wait for their later rotations.
const leftoversPerRotation = 1

// lockBackupBounded takes the backup's lock, polling for up to wait while
// another process holds it.
func lockBackupBounded(f *os.File, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	pause := 50 * time.Microsecond
	for {
		err := lockBackup(f, fOFDSetLk)
		if !isHeld(err) || !time.Now().Before(deadline) {
			return err
		}
		time.Sleep(pause)
		pause = min(2*pause, 5*time.Millisecond)
	}
}

// isHeld: the lock error says another process holds the lock.
func isHeld(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES)
}

// noOFDLocks: the filesystem (some FUSE and network ones) or kernel has no
// open-file-description locks. The backup is then gzipped unlocked, as
// before these locks came in: two processes may then gzip it at once
// (both write the same bytes), but a leftover is never kept plain for good.
func noOFDLocks(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOLCK) || errors.Is(err, syscall.EOPNOTSUPP)
}

func lockBackup(f *os.File, cmd int) error {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	for {
		err := fcntlFlock(f.Fd(), cmd, &lk)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// fcntlFlock is a seam for tests: local filesystems all have OFD locks.
var fcntlFlock = syscall.FcntlFlock
