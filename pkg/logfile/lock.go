package logfile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// Several processes append to one log file (every aws-cni exec opens the
// plugins' log; two ipamds overlap during an upgrade). Each write and each
// rotation happens under an exclusive flock on the file being written, and
// a writer that gets the lock checks that its file is still the one at the
// path before it writes. So a rotation never renames a file between that
// check and a write: no line lands in a backup after the rotation (where
// the backup's compression and removal would lose it), the size checked is
// the file's own, not this process's count of its own writes, and two
// processes never rotate the same file twice or onto one backup name.

// lockCurrent locks the file at w.path and leaves it open in w.f, w.size
// its size. Called with mu held; the caller unlocks with unlock.
func (w *Writer) lockCurrent() error {
	for attempt := 1; ; attempt++ {
		if w.f == nil {
			if err := w.open(); err != nil {
				return err
			}
		}
		if w.special {
			return nil
		}
		// A filesystem without locks (an error here) is written
		// unlocked, as every writer did before; the check below still
		// keeps a writer off a file another has rotated.
		w.lockOrSkip()
		onDisk, err := statPath(w.path)
		if err == nil && os.SameFile(w.fi, onDisk) {
			w.size = onDisk.Size()
			return nil
		}
		if attempt == maxReopens {
			// The path never shows the file just opened from it (inode
			// quirks of FUSE or overlay, or a path replaced all the time):
			// the line goes into that file rather than waiting for ever.
			if st, err := w.f.Stat(); err == nil {
				w.size = st.Size()
			}
			return nil
		}
		// Rotated by another process, or removed: the next line belongs
		// in the file at the path. A close error loses nothing.
		_ = w.f.Close()
		w.f = nil
	}
}

// lockOrSkip locks w.fd, waiting at most lockWait; but for lockQuiet after
// a wait timed out it only tries once without waiting. The holder is most
// likely still stopped, and waiting again on every line would stall each
// ADD for lockWait per line and, in ipamd, every goroutine behind w.mu.
// Lock errors are ignored by the caller's contract (lockCurrent).
func (w *Writer) lockOrSkip() {
	wait := lockWait
	if !w.lockTimedOut.IsZero() && time.Since(w.lockTimedOut) < lockQuiet {
		wait = 0
	}
	err := lockBounded(w.fd, wait)
	switch {
	case err == nil:
		w.lockTimedOut = time.Time{} // free again: wait for the next holder
	case errors.Is(err, syscall.EWOULDBLOCK) && wait > 0:
		w.lockTimedOut = time.Now()
	}
}

// maxReopens bounds the reopens of one lockCurrent. Another process's
// rotation needs one; more means the path never matches what it opens.
const maxReopens = 8

// statPath is a seam for tests: no local filesystem shows the inode
// quirks that keep a path from matching the file just opened from it.
var statPath = os.Stat

// unlock releases the lock taken by lockCurrent. Called with mu held.
func (w *Writer) unlock() {
	if w.f != nil && !w.special {
		_ = flock(w.fd, syscall.LOCK_UN) // closing the file releases it anyway
	}
}

// lockWait bounds the wait for another process's lock. It is held for one
// write or rename, microseconds; a holder stopped while holding it (SIGSTOP,
// a frozen cgroup, a debugger) must not stall every plugin exec on the node
// behind it, so past the bound the line is written unlocked, as on a
// filesystem without locks.
const lockWait = 2 * time.Second

// lockQuiet: after a wait for the lock timed out, writes only try it
// without waiting for this long (see lockOrSkip).
const lockQuiet = time.Minute

// lockBounded takes an exclusive flock on fd, giving up after wait.
func lockBounded(fd int, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	pause := 50 * time.Microsecond
	for {
		err := flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil || !errors.Is(err, syscall.EWOULDBLOCK) {
			return err
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("held by another process for %v: %w", wait, err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 5*time.Millisecond)
	}
}

func flock(fd, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if !errors.Is(err, syscall.EINTR) {
			if err != nil {
				return fmt.Errorf("flock: %w", err)
			}
			return nil
		}
	}
}
