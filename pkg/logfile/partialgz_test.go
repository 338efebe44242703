package logfile

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/logfile/gzbackup"
)

// leftPartial puts in dir the backup of base a process killed while it
// gzipped it leaves: the whole plain copy and the first half of its .gz.
func leftPartial(t *testing.T, dir, base string, at time.Time) (plain, body string) {
	t.Helper()
	var b strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&b, `{"msg":"line %d","pod":"default/p-%d"}`+"\n", i, i*7919%1000)
	}
	body = b.String()
	plain = filepath.Join(dir, base+"-"+at.UTC().Format(backupTimeFormat)+".log")
	if err := os.WriteFile(plain, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(body))
	_ = zw.Close()
	if err := os.WriteFile(plain+".gz", gz.Bytes()[:gz.Len()/2], 0o600); err != nil {
		t.Fatal(err)
	}
	return plain, body
}

// checkRepaired: the backup is one whole .gz again, its plain copy gone.
func checkRepaired(t *testing.T, w *Writer, plain, body string) {
	t.Helper()
	if _, err := os.Stat(plain); !os.IsNotExist(err) {
		t.Errorf("plain backup %s still there (%v), want it gzipped and removed", filepath.Base(plain), err)
	}
	if got := gunzip(t, plain+".gz"); string(got) != body {
		t.Errorf("%s.gz holds %d bytes, want the plain backup's %d", filepath.Base(plain), len(got), len(body))
	}
	n := 0
	for _, b := range w.Backups() {
		if strings.TrimSuffix(b, ".gz") == plain {
			n++
		}
	}
	if n != 1 {
		t.Errorf("Backups lists %s %d times, want once: %v", filepath.Base(plain), n, w.Backups())
	}
}

// A process killed while it gzipped a backup leaves the plain copy whole
// and a partial .gz. Before, the .gz hid the plain copy: Backups listed
// the partial .gz (a reader got "unexpected EOF") and no tidy or rotation
// ever compressed the plain copy again. Now a daemon's tidy gzips it anew.
func TestTidyRedoesPartialGzip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ipamd.log")
	plain, body := leftPartial(t, dir, "ipamd", time.Now().Add(-time.Hour))
	w, err := Open(path, Options{Compress: gzbackup.Compress, TidyAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.tidy() // what the TidyAfter timer runs
	checkRepaired(t, w, plain, body)
}

// The plugins' Writers never tidy; their next rotation gzips the left
// plain copy anew, as upstream's rotation compresses every plain backup.
func TestRotationRedoesPartialGzip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plugin.log")
	plain, body := leftPartial(t, dir, "plugin", time.Now().Add(-time.Hour))
	w, err := Open(path, Options{MaxSize: 100, Compress: gzbackup.Compress})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 { // 60 bytes each: the second write rotates
		mustWrite(t, w, strings.Repeat("r", 59)+"\n")
	}
	if err := w.Close(); err != nil { // waits for the rotation's compression
		t.Fatal(err)
	}
	checkRepaired(t, w, plain, body)
}

// A plain backup next to a .gz that a live process is writing (it holds
// the backup's lock) is that process's to finish: a tidy leaves both, and
// gzips it anew only once that process is gone.
func TestTidyLeavesBackupBeingGzipped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ipamd.log")
	plain, body := leftPartial(t, dir, "ipamd", time.Now().Add(-time.Hour))
	partial, err := os.ReadFile(plain + ".gz")
	if err != nil {
		t.Fatal(err)
	}
	other, err := os.OpenFile(plain, os.O_RDWR, 0) // the other process's lock
	if err != nil {
		t.Fatal(err)
	}
	if err := lockBackup(other, fOFDSetLk); err != nil {
		t.Fatal(err)
	}
	w, err := Open(path, Options{Compress: gzbackup.Compress, TidyAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.tidy()
	if gz, err := os.ReadFile(plain + ".gz"); err != nil || !bytes.Equal(gz, partial) {
		t.Errorf("tidy touched the .gz another process is writing (%v)", err)
	}
	if _, err := os.Stat(plain); err != nil {
		t.Errorf("tidy removed the plain backup another process is gzipping: %v", err)
	}
	_ = other.Close() // that process is gone
	w.tidy()
	checkRepaired(t, w, plain, body)
}
