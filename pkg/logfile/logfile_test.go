package logfile

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/logfile/gzbackup"
)

// clock is a test clock moving one second per reading, so every rotation
// has its own backup name and age.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func TestCreatedOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "ipamd.log")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte("line\n")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
}

func TestExistingFileTightenedAndAppended(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plugin.log")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("new\n")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	if string(b) != "old\nnew\n" || st.Mode().Perm() != 0o600 {
		t.Errorf("content %q mode %v, want appended and 0600", b, st.Mode().Perm())
	}
}

// TestRotatesAtSize: no file ever exceeds MaxSize, every line is kept in
// the file or a backup until backups are capped, and backups are 0600
// gzip files.
func TestRotatesAtSize(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ipamd.log")
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	w, err := Open(path, Options{MaxSize: 1000, MaxBackups: 3, Compress: gzbackup.Compress, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("x", 99) + "\n") // 100 bytes: 10 per file
	for range 25 {
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil { // waits for compression
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Size() != 500 {
		t.Errorf("current file %d bytes, want 500 (25 lines, rotated at 10)", st.Size())
	}
	backups := w.Backups()
	if len(backups) != 2 {
		t.Fatalf("backups %v, want 2", backups)
	}
	for _, b := range backups {
		if !strings.HasSuffix(b, ".log.gz") || !strings.HasPrefix(filepath.Base(b), "ipamd-2026-01-01T") {
			t.Errorf("backup name %q, want ipamd-<time>.log.gz", b)
		}
		fi, _ := os.Stat(b)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("backup %s mode %v, want 0600", b, fi.Mode().Perm())
		}
		if got := gunzip(t, b); !bytes.Equal(got, bytes.Repeat(line, 10)) {
			t.Errorf("backup %s holds %d bytes, want the 10 lines of 1000", b, len(got))
		}
	}
}

// TestRotatedCopyPlainWithoutCompress: with no Options.Compress (the
// plugins' log) a rotated copy stays plain text, 0600, named
// <base>-<time>.log.
func TestRotatedCopyPlainWithoutCompress(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plugin.log")
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	w, err := Open(path, Options{MaxSize: 1000, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("y", 99) + "\n")
	for range 15 {
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	backups := w.Backups()
	if len(backups) != 1 || !strings.HasSuffix(backups[0], ".log") || !strings.HasPrefix(filepath.Base(backups[0]), "plugin-2026-01-01T") {
		t.Fatalf("backups %v, want one plugin-<time>.log", backups)
	}
	got, err := os.ReadFile(backups[0])
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bytes.Repeat(line, 10)) {
		t.Errorf("backup holds %d bytes, want the first 10 lines as written", len(got))
	}
	if fi, _ := os.Stat(backups[0]); fi.Mode().Perm() != 0o600 {
		t.Errorf("backup mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestBackupsCappedByCount(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plugin.log")
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	w, err := Open(path, Options{MaxSize: 10, MaxBackups: 2, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if _, err := w.Write([]byte{'a' + byte(i), '\n'}); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(bytes.Repeat([]byte{'.'}, 9)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 3 { // current + 2
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Fatalf("files %v, want the log and 2 backups", names)
	}
	// Each write of 9 dots after a 2-byte marker passes 10 bytes, so files
	// alternate marker / dots; the newest backups are the last marker "h"
	// and the dots before it: the oldest were removed, not the newest.
	b := w.Backups()
	newest, _ := os.ReadFile(b[0])
	older, _ := os.ReadFile(b[1])
	if string(newest) != "h\n" || string(older) != "........." {
		t.Errorf("backups %q, %q; want the newest two (%q, %q)", newest, older, "h\n", ".........")
	}
}

func TestBackupsPrunedByAge(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ipamd.log")
	// An old backup from a previous run, 31 days old.
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	old := filepath.Join(dir, "ipamd-"+start.Add(-31*24*time.Hour).Format(backupTimeFormat)+".log.gz")
	recent := filepath.Join(dir, "ipamd-"+start.Add(-29*24*time.Hour).Format(backupTimeFormat)+".log.gz")
	unrelated := filepath.Join(dir, "ipamd-notes.log")
	for _, f := range []string{old, recent, unrelated} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := &clock{t: start}
	w, err := Open(path, Options{MaxSize: 5, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := w.Write([]byte("12345")); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for f, want := range map[string]bool{old: false, recent: true, unrelated: true} {
		_, err := os.Stat(f)
		if (err == nil) != want {
			t.Errorf("%s exists=%v, want %v", filepath.Base(f), err == nil, want)
		}
	}
	if n := len(w.Backups()); n != 2 {
		t.Errorf("backups %v, want the recent one and the new one", w.Backups())
	}
}

// TestOtherProcessRotated: writers of one file (two processes) rotate by
// the file's size, not by their own count of their writes, and a writer
// whose file another rotated appends to the new file instead of rotating
// it away. Every line is in the file or a backup, none over MaxSize.
func TestOtherProcessRotated(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plugin.log")
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, _ := Open(path, Options{MaxSize: 10, Now: c.now})
	b, _ := Open(path, Options{MaxSize: 10, Now: c.now})
	mustWrite(t, a, "aaaaaaaa\n")   // 9 bytes in the file
	mustWrite(t, b, "b\n")          // 9+2 > 10: b rotates
	mustWrite(t, a, "aa\n")         // a's file was rotated: a appends to b's: 5 bytes
	mustWrite(t, b, "bbbbbbbbbb\n") // 5+11 > 10: b rotates
	for _, w := range []*Writer{a, b} {
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for _, p := range append([]string{path}, a.Backups()...) {
		body, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(body))
	}
	want := []string{"bbbbbbbbbb\n", "b\naa\n", "aaaaaaaa\n"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("file and backups, newest first, hold %q, want %q", got, want)
	}
}

func mustWrite(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRotationRecreatesRemovedDirectory: the log directory removed while
// the daemon runs (a host clean-up of /var/log/aws-routed-eni) is made
// again at the next rotation, as upstream's rotating logger does, and the
// log goes on there. A reopen that fails is tried again at the next write
// instead of failing every write for good.
func TestRotationRecreatesRemovedDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "aws-routed-eni")
	path := filepath.Join(dir, "ipamd.log")
	w, err := Open(path, Options{MaxSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write([]byte(strings.Repeat("x", 89) + "\n")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("after removal\n")); err != nil { // rotates
		t.Fatalf("write after the directory was removed: %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "after removal\n" {
		t.Fatalf("log file after the directory was removed: %q, %v", b, err)
	}

	// A directory that cannot be made: the write fails, the next one
	// (once it can be) succeeds.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil { // a file where the directory was
		t.Fatal(err)
	}
	big := []byte(strings.Repeat("y", 99) + "\n")
	if _, err := w.Write(big); err == nil {
		t.Fatal("write succeeded with a file in place of the log directory")
	} else if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("recovered\n")); err != nil {
		t.Fatalf("write once the directory can be made again: %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "recovered\n" {
		t.Fatalf("log file after recovery: %q, %v", b, err)
	}
}

// TestNotARegularFile: a log path that is a device, a FIFO or a link to
// one (AWS_VPC_K8S_PLUGIN_LOG_FILE=/dev/null to silence the plugin, which
// runs on the host; /dev/stderr) is written through: never chmodded (the
// host's /dev/null made 0600 breaks every other user's writes to it) and
// never rotated (renamed away, replaced by a regular file).
func TestNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "null")
	if err := syscall.Mkfifo(fifo, 0o666); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if err := os.Chmod(fifo, 0o666); err != nil { // past the umask
		t.Fatal(err)
	}
	link := filepath.Join(dir, "plugin.log")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	// A reader, so opening for writing does not block; it drains until
	// the writer closes.
	drained := make(chan int64, 1)
	go func() {
		r, err := os.Open(fifo)
		if err != nil {
			drained <- -1
			return
		}
		defer r.Close()
		n, _ := io.Copy(io.Discard, r)
		drained <- n
	}()
	w, err := Open(link, Options{MaxSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	line := []byte(strings.Repeat("z", 59) + "\n")
	for range 5 {
		if _, err := w.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := <-drained; n != 5*int64(len(line)) {
		t.Errorf("reader got %d bytes, want %d", n, 5*len(line))
	}
	st, err := os.Stat(link)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Type() != os.ModeNamedPipe || st.Mode().Perm() != 0o666 {
		t.Errorf("%s is now %v, want the FIFO left as it was (prw-rw-rw-)", link, st.Mode())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only the FIFO and the link (no backup)", names)
	}
}
