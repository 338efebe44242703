package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestLoggerOpensFileAtFirstLine: a run that logs nothing leaves no log
// file; a run that logs appends JSON lines to it.
func TestLoggerOpensFileAtFirstLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sub", "egress.log")
	log, closeLog := newLogger(file, "info")
	log.Debug("below the level")
	closeLog()
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("log file after logging nothing: %v (want it absent)", err)
	}
	for range 2 {
		log, closeLog = newLogger(file, "info")
		log.Info("egress wired", "address", "169.254.172.5/22")
		closeLog()
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines int
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var rec map[string]any
		if err := json.Unmarshal(l, &rec); err != nil || rec["msg"] != "egress wired" {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines++
	}
	if lines != 2 {
		t.Fatalf("%d lines, want 2 (appended)", lines)
	}
}

// The egress plugin's log (AWS_VPC_K8S_EGRESS_V4/V6_PLUGIN_LOG_FILE) is
// rotated and kept private like aws-cni's and ipamd's (docs/compatibility.md,
// "Log files"), as upstream's egress plugin logs through the same logger:
// on an IPv6 node every pod ADD and DEL logs to it.
func TestLoggerRotatesLikeThePlugin(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "egress-v4-plugin.log")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: just below the 100 MB rotation size without writing it.
	if err := f.Truncate(100<<20 - 10); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	log, closeLog := newLogger(file, "info")
	log.Info("egress wired", "address", "169.254.172.5/22")
	closeLog()
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 1<<20 {
		t.Errorf("log file is %d bytes after passing 100 MB: not rotated", st.Size())
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("log file mode %v, want 0600", st.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("files %q, want the log and one rotated copy", names)
	}
}
