package vm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseVerdict(t *testing.T) {
	for _, c := range []struct {
		out     string
		passed  bool
		verdict string
	}{
		{"boot\n--- PASS: TestX\n\nVMTIER-RESULT: PASS\n[ 1.0] reboot: Power down\n", true, "PASS"},
		{"VMTIER-RESULT: FAIL failed: podnet.test\n", false, "FAIL failed: podnet.test"},
		// Console output may end without a newline when qemu is stopped.
		{"x\nVMTIER-RESULT: PASS", true, "PASS"},
		{"Kernel panic - not syncing\n", false, "no result line"},
		{"VMTIER-RESULT: PASSED\n", false, "PASSED"},
	} {
		passed, verdict := ParseVerdict(c.out)
		if passed != c.passed || !strings.HasPrefix(verdict, c.verdict) {
			t.Errorf("ParseVerdict(%q) = %v, %q; want %v, %q…", c.out, passed, verdict, c.passed, c.verdict)
		}
	}
}

// TestInitramfsLayout checks the newc encoding byte for byte on a small
// archive: headers, 4-byte alignment, parents before children, trailer.
func TestInitramfsLayout(t *testing.T) {
	r := NewInitramfs()
	if err := r.AddData("bin/x", []byte("hello"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := r.AddCharDev("dev/console", 5, 1); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := r.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	want := hdr("00000001", "000041ED", "00000002", "00000000", "00000000", "00000000", "00000004") + "bin\x00\x00\x00" +
		hdr("00000002", "000081ED", "00000001", "00000005", "00000000", "00000000", "00000006") + "bin/x\x00" + "hello\x00\x00\x00" +
		hdr("00000003", "000041ED", "00000002", "00000000", "00000000", "00000000", "00000004") + "dev\x00\x00\x00" +
		hdr("00000004", "00002180", "00000001", "00000000", "00000005", "00000001", "0000000C") + "dev/console\x00" + "\x00\x00" +
		hdr("00000000", "00000000", "00000001", "00000000", "00000000", "00000000", "0000000B") + "TRAILER!!!\x00" + "\x00\x00\x00"
	if got := buf.String(); got != want {
		t.Errorf("archive mismatch:\n got %q\nwant %q", got, want)
	}
	if buf.Len()%4 != 0 {
		t.Errorf("archive length %d is not 4-byte aligned", buf.Len())
	}
}

func hdr(ino, mode, nlink, size, rmaj, rmin, namesize string) string {
	return "070701" + ino + mode + "00000000" + "00000000" + nlink + "00000000" + size +
		"00000000" + "00000000" + rmaj + rmin + namesize + "00000000"
}

func TestInitramfsRejectsBadPaths(t *testing.T) {
	r := NewInitramfs()
	if err := r.AddData("a", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, want string }{
		{"/", "names the root"},
		{"a", "added twice"},
		{"a/b", "not a directory"},
	} {
		if err := r.AddData(c.name, nil, 0o644); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("AddData(%q) = %v, want error containing %q", c.name, err, c.want)
		}
	}
	if err := r.AddFile("f", filepath.Join(t.TempDir(), "missing"), 0o644); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("AddFile of a missing host file = %v, want not-exist error", err)
	}
}

// fakeQemu puts a qemu-system-x86_64 script on PATH that prints console
// and then does what tail says.
func fakeQemu(t *testing.T, console, tail string) {
	t.Helper()
	dir := t.TempDir()
	script := "#!/bin/sh\nprintf -- '" + console + "'\n" + tail + "\n"
	if err := os.WriteFile(filepath.Join(dir, "qemu-system-x86_64"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
}

func TestBootReportsGuestFailure(t *testing.T) {
	fakeQemu(t, `--- FAIL: TestVMX\r\nVMTIER-RESULT: FAIL failed: podnet.test\r\n`, "exit 0")
	res, err := Boot(context.Background(), Kernel{Dir: t.TempDir()}, "initrd", nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Passed || res.Verdict != "FAIL failed: podnet.test" || !strings.Contains(res.Output, "--- FAIL: TestVMX\n") {
		t.Errorf("Boot = %+v, want a failed verdict with the console kept", res)
	}
}

// A guest that hangs is stopped when ctx ends, and its console so far is
// kept. ctx ends once the console shows the guest hung: a fixed deadline
// can pass on a loaded machine before the guest printed anything.
func TestBootTimesOut(t *testing.T) {
	fakeQemu(t, `booting\n`, "exec sleep 60")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var ended time.Time
	hung := &consoleWatch{want: "booting", seen: func() { ended = time.Now(); cancel() }}
	res, err := Boot(ctx, Kernel{Dir: t.TempDir()}, "initrd", hung)
	if err == nil || !strings.Contains(err.Error(), "did not power off") {
		t.Errorf("Boot of a hung guest = %v, want a timeout error", err)
	}
	if res.Passed || !strings.Contains(res.Output, "booting") {
		t.Errorf("hung guest result = %+v, want not passed with its console", res)
	}
	if ended.IsZero() {
		t.Fatal("the console never showed the guest booting")
	}
	if took := time.Since(ended); took > 30*time.Second {
		t.Errorf("Boot returned %s after ctx ended", took)
	}
}

// consoleWatch is a live console that calls seen once the console shows
// want.
type consoleWatch struct {
	mu   sync.Mutex
	out  []byte
	want string
	seen func()
}

func (w *consoleWatch) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := bytes.Contains(w.out, []byte(w.want))
	w.out = append(w.out, p...)
	if !had && bytes.Contains(w.out, []byte(w.want)) {
		w.seen()
	}
	return len(p), nil
}
