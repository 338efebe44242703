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
