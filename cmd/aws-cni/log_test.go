package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLogFileOpenedWhenFirstNeeded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aws-routed-eni", "plugin.log")
	log, open, closeLog := newLogger(path, "info")
	defer closeLog()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("log file exists before anything needed it: %v", err)
	}
	open()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("open did not create the log file: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v, want 0600", st.Mode().Perm())
	}
	log.Info("pod added", "ips", 1)
	b, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(b), `"msg":"pod added"`) {
		t.Errorf("log file holds %q (%v), want the record", b, err)
	}
}

func TestLogFileThatCannotBeOpenedFallsBackToStderr(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	log, _, closeLog := newLogger(filepath.Join(notDir, "plugin.log"), "info")
	log.Info("pod added")
	closeLog()
	os.Stderr = stderr
	_ = w.Close()
	out, _ := io.ReadAll(r)
	for _, want := range []string{"cannot open plugin log file; logging to stderr", `"msg":"pod added"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("stderr %q lacks %q", out, want)
		}
	}
}
