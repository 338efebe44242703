package logfile

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A log file whose mode cannot be tightened (append-only attribute, a
// file of another user on a filesystem refusing chmod) is still appended
// to: upstream's logger never changes an existing file's mode, and ours
// failing Open on it kept ipamd from starting. The failure is one warning
// line in the file, naming it; the mode is left as it was.
func TestUntightenableFileStillOpens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipamd.log")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// chattr +a: the kernel refuses chmod even to root, appends still work.
	if out, err := exec.Command("chattr", "+a", path).CombinedOutput(); err != nil {
		t.Skipf("cannot set the append-only attribute (needs root and a filesystem with it): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-a", path).Run() })
	if err := os.Chmod(path, 0o600); err == nil {
		t.Fatal("chmod of an append-only file succeeded: the test cannot show anything")
	}
	checkUntightened(t, path)
}

// The same through the package's chmod seam, for machines where the
// attribute cannot be set.
func TestUntightenableFileStillOpensSeam(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plugin.log")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	orig := chmodFile
	chmodFile = func(*os.File, os.FileMode) error { return &os.PathError{Op: "chmod", Path: path, Err: syscall.EPERM} }
	t.Cleanup(func() { chmodFile = orig })
	checkUntightened(t, path)
}

func checkUntightened(t *testing.T, path string) {
	t.Helper()
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open: %v, want the file opened despite the refused chmod", err)
	}
	for _, s := range []string{"new1\n", "new2\n"} {
		mustWrite(t, w, s)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 4 || lines[0] != "old" || lines[2] != "new1" || lines[3] != "new2" {
		t.Fatalf("file holds %q, want old, one warning, new1, new2", lines)
	}
	var warn map[string]any
	if err := json.NewDecoder(bytes.NewReader([]byte(lines[1]))).Decode(&warn); err != nil {
		t.Fatalf("warning line %q is not JSON: %v", lines[1], err)
	}
	if warn["level"] != "WARN" || warn["file"] != path || !strings.Contains(warn["msg"].(string), "0600") {
		t.Errorf("warning %v, want level WARN naming the file and 0600", warn)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want it left 0644", st.Mode().Perm())
	}
}
