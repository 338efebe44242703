package datastore

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A record damaged in the middle of the log, with whole records after it,
// makes Load fail as unreadable naming the log, and the log is set aside
// where no later write removes it; the assignments after the damage are
// never silently dropped (they would be handed out again).
func TestLoadRefusesMidLogCorruption(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	s, _ := logStore(t, osFS{}, path, 1<<20)
	for i := range 4 {
		if _, err := s.Assign(podKey(i), podMeta(i)); err != nil {
			t.Fatal(err)
		}
	}
	logs, data := onlyLog(t, path)
	// Damage the first batch record; whole ones (later pods) follow it.
	var starts []int
	at := 0
	for _, r := range splitRecords(data) {
		starts = append(starts, at)
		at += 8 + len(r)
	}
	if len(starts) < 3 {
		t.Fatalf("the log holds %d records, want a header and 2 batches or more", len(starts))
	}
	data[starts[1]+8] ^= 0x01
	if err := os.WriteFile(logs[0], data, 0o600); err != nil {
		t.Fatal(err)
	}

	s2, _ := logStore(t, osFS{}, path, 1<<20)
	_, err := s2.Load(nil)
	if !errors.Is(err, ErrUnreadable) || !strings.Contains(err.Error(), logs[0]) {
		t.Fatalf("Load: %v, want ErrUnreadable naming %s", err, logs[0])
	}
	aside, _ := filepath.Glob(logs[0] + ".corrupt-*")
	if len(aside) != 1 {
		t.Fatalf("set aside: %v, want one %s.corrupt-<time>", aside, logs[0])
	}
	// A fresh state written afterwards (what ipamd's recovery does) keeps it.
	if err := s2.Persist(); err != nil {
		t.Fatal(err)
	}
	if kept, err := os.ReadFile(aside[0]); err != nil || string(kept) != string(data) {
		t.Fatalf("the set-aside log after a write: %v (same bytes: %v)", err, string(kept) == string(data))
	}
}

// A log whose header is damaged, with whole records after it, cannot be
// shown not to apply: the read fails naming it. A damaged log whose intact
// header names another checkpoint content applies to nothing and is
// ignored.
func TestReadDamagedLogHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	s, _ := logStore(t, osFS{}, path, 1<<20)
	for i := range 3 {
		if _, err := s.Assign(podKey(i), podMeta(i)); err != nil {
			t.Fatal(err)
		}
	}
	logs, data := onlyLog(t, path)
	recs := splitRecords(data)
	if len(recs) < 3 {
		t.Fatalf("the log holds %d records", len(recs))
	}
	whole, err := NewFileCheckpointer(path).Read()
	if err != nil {
		t.Fatal(err)
	}

	bad := append([]byte(nil), data...)
	bad[8] ^= 0x01 // the header's payload
	if err := os.WriteFile(logs[0], bad, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = NewFileCheckpointer(path).Read()
	var lc *LogCorruptError
	if !errors.As(err, &lc) || lc.Log != logs[0] || lc.Offset != 0 {
		t.Fatalf("damaged header: %v, want a LogCorruptError of %s at 0", err, logs[0])
	}

	// A stale log (another base) with a damaged second record, beside the
	// good one: the good log still applies in full.
	stale := appendRecord(nil, []byte(`{"log":"`+logMagic+`","base":"0000"}`))
	second := len(stale)
	stale = appendRecord(stale, []byte(`{"del":["10.0.0.1"]}`))
	stale = appendRecord(stale, []byte(`{"del":["10.0.0.2"]}`))
	stale[second+8] ^= 0x01
	if err := os.WriteFile(logs[0], data, 0o600); err != nil {
		t.Fatal(err)
	}
	gens, err := logGens(osFS{}, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logName(path, gens[0]+1), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := NewFileCheckpointer(path).Read()
	if err != nil || len(f.Allocations) != len(whole.Allocations) || len(f.Allocations) != 3 {
		t.Fatalf("beside a damaged stale log: %d allocations (%v), want 3", len(f.Allocations), err)
	}
}

// onlyLog reads the one log of the checkpoint at path; logs[0] names it.
func onlyLog(t *testing.T, path string) (logs []string, data []byte) {
	t.Helper()
	logs, _ = filepath.Glob(path + ".log.*")
	if len(logs) != 1 {
		t.Fatalf("logs %v, want 1", logs)
	}
	data, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	return logs, data
}
