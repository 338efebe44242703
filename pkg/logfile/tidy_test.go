package logfile

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/logfile/gzbackup"
	"github.com/vpc-cni/vpc-cni/pkg/poll"
)

// Upstream's logger prunes expired and surplus backups and compresses
// leftover plain ones at every open, not only at a rotation. A daemon's
// Writer (open past TidyAfter) now does it once, without waiting for its
// next rotation: before, a plain backup left by a process killed while
// compressing (or by upstream's plugin, whose compression runs after it
// may exit) stayed plain, and a 31-day-old backup stayed, until the next
// 100 MB of log.
func TestDaemonTidiesExistingBackups(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ipamd.log")
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	backup := func(age time.Duration, ext string) string {
		return filepath.Join(dir, "ipamd-"+now.Add(-age).Format(backupTimeFormat)+ext)
	}
	expired := backup(31*24*time.Hour, ".log.gz")
	leftover := backup(time.Hour, ".log")
	kept := backup(2*time.Hour, ".log.gz")
	for f, body := range map[string]string{expired: "", leftover: "left over\n", kept: ""} {
		if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w, err := Open(path, Options{Compress: gzbackup.Compress, TidyAfter: time.Millisecond, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	tidied := func() bool {
		_, errExpired := os.Stat(expired)
		_, errPlain := os.Stat(leftover)
		_, errGz := os.Stat(leftover + ".gz")
		return os.IsNotExist(errExpired) && os.IsNotExist(errPlain) && errGz == nil
	}
	if err := poll.Until(context.Background(), 30*time.Second, func() error {
		if tidied() {
			return nil
		}
		ents, _ := os.ReadDir(dir)
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		return fmt.Errorf("directory holds %v", names)
	}); err != nil {
		t.Fatalf("%v; want the expired backup removed and the leftover gzipped", err)
	}
	if got := gunzip(t, leftover+".gz"); string(got) != "left over\n" {
		t.Errorf("leftover.gz holds %q", got)
	}
	if _, err := os.Stat(kept); err != nil {
		t.Errorf("recent backup removed: %v", err)
	}
}

// A plugin process closes its Writer long before TidyAfter: it reads no
// directory and leaves the backups to the next rotation.
func TestShortLivedWriterLeavesBackups(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plugin.log")
	leftover := filepath.Join(dir, "plugin-"+time.Now().UTC().Add(-time.Hour).Format(backupTimeFormat)+".log")
	if err := os.WriteFile(leftover, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := Open(path, Options{Compress: gzbackup.Compress})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, "line\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); err != nil {
		t.Errorf("leftover touched by a short-lived writer: %v", err)
	}
	if _, err := os.Stat(leftover + ".gz"); err == nil {
		t.Error("short-lived writer compressed a leftover")
	}
}
