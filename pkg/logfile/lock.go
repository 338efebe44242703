package logfile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
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
	for {
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
		_ = flock(w.fd, syscall.LOCK_EX)
		onDisk, err := os.Stat(w.path)
		if err == nil && os.SameFile(w.fi, onDisk) {
			w.size = onDisk.Size()
			return nil
		}
		// Rotated by another process, or removed: the next line belongs
		// in the file at the path. A close error loses nothing.
		_ = w.f.Close()
		w.f = nil
	}
}

// unlock releases the lock taken by lockCurrent. Called with mu held.
func (w *Writer) unlock() {
	if w.f != nil && !w.special {
		_ = flock(w.fd, syscall.LOCK_UN) // closing the file releases it anyway
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
