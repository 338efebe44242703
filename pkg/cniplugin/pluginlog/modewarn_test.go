package pluginlog

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A plugin log file whose chmod is refused (append-only here) gets the
// logfile's warning once, not once per plugin call: each ADD/DEL opens a
// new Writer. Every call's own lines are still written.
func TestUntightenableLogWarnedOnceAcrossCalls(t *testing.T) {
	checkWarnings(t, "debug", 1)
}

// At pluginLogLevel error (or fatal) the plugin writes no warning of its
// own, and none about the file's mode either.
func TestUntightenableLogNotWarnedAboveLevel(t *testing.T) {
	checkWarnings(t, "error", 0)
}

func checkWarnings(t *testing.T, level string, want int) {
	path := filepath.Join(t.TempDir(), "plugin.log")
	if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chattr", "+a", path).CombinedOutput(); err != nil {
		t.Skipf("cannot set the append-only attribute (needs root and a filesystem with it): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("chattr", "-a", path).Run() })
	if err := os.Chmod(path, 0o600); err == nil {
		t.Fatal("chmod of an append-only file succeeded: the test cannot show anything")
	}
	const calls = 50
	for i := range calls {
		log, f := New(path, level, Rotated)
		f.Open() // as aws-cni's ADD does, before its first record
		log.Debug("plugin call", "n", i)
		log.Error("plugin call done", "n", i)
		f.Close()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if got := strings.Count(s, "log file mode not tightened"); got != want {
		t.Errorf("level %s: %d mode warnings after %d plugin calls, want %d", level, got, calls, want)
	}
	for i := range calls {
		if !strings.Contains(s, fmt.Sprintf(`"msg":"plugin call done","n":%d}`, i)) {
			t.Fatalf("call %d's line missing from the log", i)
		}
	}
	if !strings.HasPrefix(s, "old\n") {
		t.Errorf("log starts %.20q, want the old content kept", s)
	}
}
