package logfile

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/logfile/gzbackup"
)

// On a filesystem without open-file-description locks (some FUSE and
// network filesystems refuse F_OFD_SETLK) a leftover plain backup is still
// gzipped, unlocked, as before the locks came in. Before, the refused lock
// read as "another process is gzipping it" and it stayed plain for good.
func TestLeftoverGzippedWithoutOFDLocks(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EINVAL, syscall.ENOLCK, syscall.EOPNOTSUPP} {
		t.Run(errno.Error(), func(t *testing.T) {
			orig := fcntlFlock
			fcntlFlock = func(uintptr, int, *syscall.Flock_t) error { return errno }
			t.Cleanup(func() { fcntlFlock = orig })

			dir := t.TempDir()
			plain, body := leftPartial(t, dir, "ipamd", time.Now().Add(-time.Hour))
			w, err := Open(filepath.Join(dir, "ipamd.log"), Options{Compress: gzbackup.Compress, TidyAfter: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			w.tidy()
			checkRepaired(t, w, plain, body)
		})
	}
}
