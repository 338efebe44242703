package logfile

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A log file that cannot be renamed (the append-only attribute, which
// also refuses the chmod: TestUntightenableFileStillOpens) cannot be
// rotated by anyone. Before, every write past MaxSize tried to rotate,
// failed and was dropped: the log went silent for good. Now the line is
// appended anyway; the file grows past MaxSize, as its attribute asks.
func TestUnrenamableFileKeepsEveryLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plugin.log")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+a", path).CombinedOutput(); err != nil {
		t.Skipf("cannot set the append-only attribute (needs root and a filesystem with it): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-a", path).Run() })
	checkEveryLineKept(t, path)
}

// The same through the package's rename seam, for machines where the
// attribute cannot be set.
func TestUnrenamableFileKeepsEveryLineSeam(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plugin.log")
	orig := renameFile
	renameFile = func(from, to string) error {
		return &os.LinkError{Op: "rename", Old: from, New: to, Err: syscall.EPERM}
	}
	t.Cleanup(func() { renameFile = orig })
	checkEveryLineKept(t, path)
}

func checkEveryLineKept(t *testing.T, path string) {
	t.Helper()
	var want strings.Builder
	for range 3 { // one Writer per plugin call
		w, err := Open(path, Options{MaxSize: 100})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			line := strings.Repeat("a", 39) + "\n"
			_, _ = w.Write([]byte(line)) // as slog: an error is not seen
			want.WriteString(line)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Errorf("file holds %d bytes, want all %d written: a line was dropped", len(got), want.Len())
	}
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("%d files in the directory, want only the log", len(ents))
	}
}
