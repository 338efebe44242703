package logfile

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A process stopped while holding the log's lock (SIGSTOP, a frozen
// cgroup) must not stall the other writers: every plugin exec on the node
// writes this log. Before, a write waited for the lock for ever; now it
// waits lockWait and writes unlocked.
func TestWriteNotStalledByHeldLock(t *testing.T) {
	path, w, holder := openWithHeldLock(t)

	done := make(chan error, 1)
	go func() {
		_, err := w.Write([]byte("while held\n"))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("write while another holds the lock: %v", err)
		}
	case <-time.After(lockWait + 30*time.Second):
		t.Fatalf("a write waited more than %v for a lock held by another writer", lockWait+30*time.Second)
	}

	// Released: writes go through the lock again.
	if err := syscall.Flock(int(holder.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("after release\n")); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "while held\nafter release\n" {
		t.Fatalf("log holds %q", got)
	}
}

// After one write timed out on a held lock, the next writes do not wait
// again: an ADD writing 3 lines waited 3 × lockWait before, and in ipamd
// each wait held the Writer's mutex, stalling every logging goroutine.
func TestHeldLockWaitedOutOnce(t *testing.T) {
	path, w, holder := openWithHeldLock(t)

	mustWrite(t, w, "first\n") // waits lockWait, once
	start := time.Now()
	mustWrite(t, w, "second\n")
	mustWrite(t, w, "third\n")
	if d := time.Since(start); d >= lockWait {
		t.Errorf("two writes after a timed-out one took %v: each waited for the held lock again", d)
	}

	// Released: the next write takes the lock, and a later hold is
	// waited for again (the Writer did not give up locking for good).
	if err := syscall.Flock(int(holder.Fd()), syscall.LOCK_UN); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, w, "fourth\n")
	if err := syscall.Flock(int(holder.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	mustWrite(t, w, "fifth\n")
	if d := time.Since(start); d < lockWait {
		t.Errorf("a write after the lock was free again waited only %v for a new hold, want lockWait", d)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "first\nsecond\nthird\nfourth\nfifth\n" {
		t.Fatalf("log holds %q", got)
	}
}

// openWithHeldLock opens a Writer on a new log and holds the file's flock
// through another open file description, which conflicts with the
// Writer's as another process's would. It returns the log's path, the
// Writer and the holder.
func openWithHeldLock(t *testing.T) (string, *Writer, *os.File) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plugin.log")
	w, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	holder, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Close() })
	if err := syscall.Flock(int(holder.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	return path, w, holder
}
