package logfile

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A path whose stat never matches the file just opened from it (inode
// quirks of FUSE or overlay filesystems, or a path replaced all the time)
// must not keep a write reopening it for ever: before, Write looped
// without end under the Writer's mutex, hanging the plugin and every
// logging goroutine of ipamd. Now the line goes into the last file opened.
func TestWriteToPathNeverMatchingItsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "plugin.log")
	other := filepath.Join(dir, "other")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	orig := statPath
	statPath = func(string) (os.FileInfo, error) { return os.Stat(other) }
	t.Cleanup(func() { statPath = orig })

	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.Write([]byte("line\n"))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("write: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a write to a path never matching its file did not return in 30 s")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "line\n" {
		t.Fatalf("log holds %q (%v), want the line", got, err)
	}
}
