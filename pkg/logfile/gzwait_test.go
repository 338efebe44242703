package logfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/logfile/gzbackup"
)

// A process stopped while gzipping the backup this Writer just rotated
// (it holds the backup's lock) must not hang Close: before, afterRotate
// waited on F_OFD_SETLKW for ever and Close, waiting for it, never
// returned, so the plugin exec hung until the runtime killed it. Now the
// backup is left, whole and plain, to a later pass.
func TestCloseNotHungByStoppedGzipper(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plugin.log")
	var holder *os.File // the stopped gzipper's lock, another open file description
	t.Cleanup(func() {
		if holder != nil {
			_ = holder.Close()
		}
	})
	orig := renameFile
	renameFile = func(from, to string) error {
		if err := orig(from, to); err != nil {
			return err
		}
		f, err := os.OpenFile(to, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		holder = f
		return lockBackup(f, fOFDSetLk)
	}
	t.Cleanup(func() { renameFile = orig })

	w, err := Open(path, Options{MaxSize: 100, Compress: gzbackup.Compress})
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("g", 59) + "\n"
	mustWrite(t, w, line)
	mustWrite(t, w, line) // rotates
	done := make(chan error, 1)
	go func() { done <- w.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(lockWait + 30*time.Second):
		t.Fatalf("Close did not return in %v while another process held the new backup's lock", lockWait+30*time.Second)
	}
	bs := w.Backups()
	if len(bs) != 1 || isGz(bs[0]) {
		t.Fatalf("backups %v, want the one plain backup left to its gzipper", bs)
	}
	if got, err := os.ReadFile(bs[0]); err != nil || string(got) != line {
		t.Errorf("backup holds %q (%v), want the first line", got, err)
	}
}
