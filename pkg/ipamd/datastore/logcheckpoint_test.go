package datastore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

const memPath = "/ck/ipam.json"

// logStore is a store of two /28s whose checkpoint is a LogCheckpointer
// on fsys, folded once its log holds foldAt bytes (no idle fold).
func logStore(t *testing.T, fsys ckptFS, path string, foldAt int64) (*Store, *LogCheckpointer) {
	t.Helper()
	lc := &LogCheckpointer{Path: path, fsys: fsys, CompactBytes: foldAt, IdleFold: -1,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	s, err := New(Options{Mode: ModePrefixIPv4, CooldownPeriod: time.Minute, Checkpointer: lc, Now: newClock().now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AddENI(ENI{ID: "eni-0", IsPrimary: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"10.0.0.0/28", "10.0.0.16/28"} {
		if err := s.AddCIDR("eni-0", pfx(p)); err != nil {
			t.Fatal(err)
		}
	}
	return s, lc
}

// churn runs ADDs and DELs one after another until one fails, and returns
// the keys and addresses held after the last acknowledged change and the
// change in flight when it failed (the file may or may not hold it).
// With gate set, each change lets one held fold go on (see memFS).
func churn(s *Store, ops int, gate chan struct{}) (held map[Key]netip.Addr, inFlight Key, failed bool) {
	held = map[Key]netip.Addr{}
	if err := s.Persist(); err != nil {
		return held, Key{}, true
	}
	for i := 0; i < ops; i++ {
		if gate != nil && i%2 == 1 {
			select {
			case gate <- struct{}{}:
			default:
			}
		}
		if i%3 == 2 {
			k := podKey(i - 2)
			if _, err := s.Unassign(k); err != nil {
				return held, k, true
			}
			delete(held, k)
			continue
		}
		a, err := s.Assign(podKey(i), podMeta(i))
		if err != nil {
			return held, podKey(i), true
		}
		held[podKey(i)] = a.Addr
	}
	return held, Key{}, false
}

// checkRecovered reads what a crash left and checks that every
// acknowledged assignment is there, every acknowledged release is gone,
// and only the change in flight may go either way.
func checkRecovered(t *testing.T, img *memFS, held map[Key]netip.Addr, inFlight Key) File {
	t.Helper()
	return checkRecoveredSet(t, img, held, map[Key]bool{inFlight: true})
}

// A crash (power loss) at every step of ADDs and DELs, including every
// step of the folds the log goes through, loses no acknowledged change
// and brings back no released one, with the unsynced tail of every file
// lost, torn, kept whole, or kept with a hole before it. A restart from
// what is left writes and reads back again. Logs are preallocated
// (records over zeros, then, past the zeros, appended), or all over
// zeros, or not preallocated.
func TestLogCheckpointCrashAtEveryStep(t *testing.T) {
	for name, prealloc := range map[string]int64{"preallocated and outgrown": 0, "preallocated": 4096, "appended": -1} {
		t.Run(name, func(t *testing.T) { crashAtEveryStep(t, prealloc) })
	}
}

func crashAtEveryStep(t *testing.T, prealloc int64) {
	const ops = 39
	// run churns on m, holding each fold's file replacement until two
	// more changes were made.
	run := func(m *memFS) (map[Key]netip.Addr, Key, bool) {
		s, lc := logStore(t, m, memPath, 700)
		lc.prealloc = prealloc
		if err := s.Persist(); err != nil { // the first write replaces the file: not held
			return map[Key]netip.Addr{}, Key{}, true
		}
		gate := make(chan struct{})
		m.mu.Lock()
		m.gate = gate
		m.mu.Unlock()
		held, inFlight, failed := churn(s, ops, gate)
		m.mu.Lock()
		m.gate = nil
		m.mu.Unlock()
		close(gate)
		_ = lc.Close()
		return held, inFlight, failed
	}
	clean := newMemFS()
	if _, _, failed := run(clean); failed {
		t.Fatal("the run without a crash failed")
	}
	total := clean.steps
	half := func(n int) int { return n / 2 }
	tears := map[string]struct {
		tear  func(int) int
		holes bool
	}{
		"lost":  {func(int) int { return 0 }, false},
		"torn":  {half, false},
		"kept":  {func(n int) int { return n }, false},
		"holes": {half, true},
	}
	midFold, zeroTail := 0, 0
	for name, tr := range tears {
		for k := 1; k <= total; k++ {
			m := newMemFS()
			m.crashAt, m.tear, m.holes = k, tr.tear, tr.holes
			held, inFlight, failed := run(m)
			if !failed {
				continue // this run took fewer steps (a fold ran later)
			}
			img := m.crashed()
			logs := 0
			for _, n := range img.names() {
				if strings.Contains(n, ".log.") {
					logs++
				}
			}
			if logs > 1 {
				midFold++
			}
			zeroTail += zeroTailedLogs(img)
			f := checkRecovered(t, img, held, inFlight)
			// Restart: the first write replaces the file whole.
			s2, _ := logStore(t, img, memPath, 700)
			f.Version = CheckpointVersion // also when nothing was left
			if _, err := s2.Restore(f, nil); err != nil {
				t.Fatalf("%s at step %d: restart: %v", name, k, err)
			}
			if _, err := s2.Assign(podKey(1000), podMeta(1000)); err != nil {
				t.Fatalf("%s at step %d: ADD after restart: %v", name, k, err)
			}
			after, err := readCheckpoint(img, memPath)
			if err != nil || len(after.Allocations) != len(f.Allocations)+1 {
				t.Fatalf("%s at step %d: after restart and one ADD: %d allocations (%v), want %d", name, k, len(after.Allocations), err, len(f.Allocations)+1)
			}
		}
	}
	if midFold == 0 {
		t.Fatal("no crash fell inside a fold")
	}
	if prealloc >= 0 && zeroTail == 0 {
		t.Fatal("no crash left a log ending in zeros")
	}
	t.Logf("%d steps, crashes inside a fold: %d, logs left ending in zeros: %d", total, midFold, zeroTail)
}

// zeroTailedLogs counts the logs of img whose records are followed by
// zeros (preallocated, or a record torn over them).
func zeroTailedLogs(img *memFS) int {
	n := 0
	for _, name := range img.names() {
		if !strings.Contains(name, ".log.") {
			continue
		}
		data, _ := img.ReadFile(name)
		end := 0
		for _, r := range splitRecords(data) {
			end += 8 + len(r)
		}
		if end < len(data) && !slices.ContainsFunc(data[end:], func(b byte) bool { return b != 0 }) {
			n++
		}
	}
	return n
}

// Whatever was written past the last whole record (a write that never
// returned) is ignored: the read is the state before it, not an error.
// The log is preallocated, so a torn record sits among zeros, and may be
// followed by a whole record a disk wrote before it (never acknowledged:
// the torn one's sync had not returned); reading stops at the torn one.
func TestLogCheckpointIgnoresTornRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	s, _ := logStore(t, osFS{}, path, 1<<20)
	held, _, failed := churn(s, 6, nil)
	if failed {
		t.Fatal("churn failed")
	}
	for _, i := range []int{99, 100} {
		if _, err := s.Assign(podKey(i), podMeta(i)); err != nil {
			t.Fatal(err)
		}
	}
	logs, grown := onlyLog(t, path)
	// Record boundaries: the last two records are pod 99's and pod 100's.
	var ends []int
	at := 0
	for _, r := range splitRecords(grown) {
		at += 8 + len(r)
		ends = append(ends, at)
	}
	if len(ends) < 3 {
		t.Fatalf("the log holds %d records", len(ends))
	}
	r99 := [2]int{ends[len(ends)-3], ends[len(ends)-2]}
	r100 := [2]int{ends[len(ends)-2], ends[len(ends)-1]}
	if !onTmpfs(t, path) && len(grown) <= r100[1] {
		t.Fatalf("the log is %d bytes, its records end at %d: not preallocated", len(grown), r100[1])
	}
	// zero and flip return the log with a part of it zeroed or altered.
	zero := func(b []byte, lo, hi int) []byte { clear(b[lo:hi]); return b }
	flip := func(b []byte, i int) []byte { b[i] ^= 0xff; return b }
	clone := func() []byte { return append([]byte(nil), grown...) }
	// A torn tail: the last record (pod 100's) damaged, nothing whole after
	// it. Pod 99 is read, pod 100 is not, and that is no error.
	mid := (r100[0] + r100[1]) / 2
	torn := map[string][]byte{
		"cut short":           zero(clone(), r100[1]-5, r100[1]),
		"bad checksum":        flip(clone(), r100[1]-1),
		"zeros":               zero(clone(), r100[0], r100[1]),
		"only its later half": zero(clone(), r100[0], mid),
		"bad length":          flip(clone(), r100[0]+3),
	}
	for name, data := range torn {
		if err := os.WriteFile(logs[0], data, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := NewFileCheckpointer(path).Read()
		if err != nil {
			t.Fatalf("torn tail, %s: %v", name, err)
		}
		if !fileHasKey(f, podKey(99)) || fileHasKey(f, podKey(100)) || len(f.Allocations) != len(held)+1 {
			t.Fatalf("torn tail, %s: read %d allocations (pod 99: %v, pod 100: %v), want the %d before the torn record",
				name, len(f.Allocations), fileHasKey(f, podKey(99)), fileHasKey(f, podKey(100)), len(held)+1)
		}
	}
	// The same damage to pod 99's record, with pod 100's whole after it,
	// is corruption: the read fails naming the log rather than dropping
	// pod 100 (which still holds its address) in silence.
	mid = (r99[0] + r99[1]) / 2
	corrupt := map[string][]byte{
		"bad checksum":           flip(clone(), r99[1]-1),
		"zeros":                  zero(clone(), r99[0], r99[1]),
		"only its later half":    zero(clone(), r99[0], mid),
		"bad length, then whole": flip(clone(), r99[0]+3),
	}
	for name, data := range corrupt {
		if err := os.WriteFile(logs[0], data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := NewFileCheckpointer(path).Read()
		var lc *LogCorruptError
		if !errors.As(err, &lc) || lc.Log != logs[0] || lc.Offset != r99[0] || lc.Next != r100[0] || !errors.Is(err, ErrCheckpoint) {
			t.Fatalf("corrupt mid-log, %s: err %v, want a LogCorruptError of %s at %d with a record at %d",
				name, err, logs[0], r99[0], r100[0])
		}
	}
	if err := os.WriteFile(logs[0], grown, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := NewFileCheckpointer(path).Read()
	if err != nil || !fileHasKey(f, podKey(99)) || !fileHasKey(f, podKey(100)) || len(f.Allocations) != len(held)+2 {
		t.Fatalf("the whole log: %d allocations (%v), want %d with pods 99 and 100", len(f.Allocations), err, len(held)+2)
	}
}

// onTmpfs tells whether path's file system is tmpfs, where logs are not
// preallocated.
func onTmpfs(t *testing.T, path string) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(path), &st); err != nil {
		t.Fatal(err)
	}
	return st.Type == unix.TMPFS_MAGIC
}

// A folded checkpoint is upstream's file alone: upstream's documented
// format (upstreamRead) and our restore both find exactly the live pods,
// and no log is left beside it. Before the fold, our restore already
// finds them through the log.
func TestFoldedCheckpointReadByBothReaders(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ipam.json")
	s, lc := logStore(t, osFS{}, path, 1500)
	held, _, failed := churn(s, 42, nil)
	if failed {
		t.Fatal("churn failed")
	}
	check := func(when string) {
		f, err := NewFileCheckpointer(path).Read()
		if err != nil {
			t.Fatalf("%s: our read: %v", when, err)
		}
		if len(f.Allocations) != len(held) {
			t.Fatalf("%s: our read found %d allocations, want %d", when, len(f.Allocations), len(held))
		}
		for _, a := range f.Allocations {
			if held[a.Key] != a.Addr {
				t.Fatalf("%s: our read has %s at %s, want %s", when, a.Key, a.Addr, held[a.Key])
			}
		}
	}
	check("before the fold")
	if err := lc.Close(); err != nil {
		t.Fatal(err)
	}
	check("after the fold")
	if logs, _ := filepath.Glob(path + ".log.*"); len(logs) != 0 {
		t.Fatalf("logs left after Close: %v", logs)
	}
	upstreamReadsExactly(t, path, held)
	checkUpstreamShape(t, path, len(held))
	// Our restart from the folded file finds them too, and goes on.
	s2, _ := logStore(t, osFS{}, path, 1500)
	if res, err := s2.Load(nil); err != nil || len(res.Restored) != len(held) {
		t.Fatalf("restore of the folded file: %+v %v", res, err)
	}
}

// With no write for IdleFold, the log is folded in on its own: upstream's
// reader of the file alone then finds the pods the log held.
func TestLogCheckpointFoldsWhenIdle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	s, lc := logStore(t, osFS{}, path, 1<<20)
	lc.IdleFold = 20 * time.Millisecond
	held, _, failed := churn(s, 9, nil)
	if failed {
		t.Fatal("churn failed")
	}
	err := testutil.Eventually(context.Background(), 10*time.Second, func() error {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		up, err := upstreamRead(data)
		if err != nil {
			return err
		}
		if len(up) != len(held) {
			return fmt.Errorf("upstream's reader finds %d pods in the file, want %d", len(up), len(held))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := lc.Close(); err != nil {
		t.Fatal(err)
	}
}

// On tmpfs a log is not preallocated: its zeros would only take memory.
func TestLogNotPreallocatedOnTmpfs(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "ckpt-")
	if err != nil || !onTmpfs(t, filepath.Join(shm, "x")) {
		t.Skipf("no tmpfs at /dev/shm (%v)", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(shm) })
	path := filepath.Join(shm, "ipam.json")
	s, lc := logStore(t, osFS{}, path, 1<<20)
	if _, _, failed := churn(s, 6, nil); failed {
		t.Fatal("churn failed")
	}
	_, data := onlyLog(t, path)
	end := 0
	for _, r := range splitRecords(data) {
		end += 8 + len(r)
	}
	if end < 100 || len(data) != end {
		t.Fatalf("the log is %d bytes, its records end at %d", len(data), end)
	}
	if err := lc.Close(); err != nil {
		t.Fatal(err)
	}
}

// A reader that races the background fold (localvpc and the tests read a
// running node's checkpoint) still finds every acknowledged assignment: a
// fold renames the new file into place before it removes the old log, and
// the reader starts over when the file changed under it.
func TestReadDuringFoldsSeesEveryAcknowledgedAssignment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipam.json")
	s, lc := logStore(t, osFS{}, path, 600) // a fold every few records
	for i := 2; i < 16; i++ {               // every assignment below takes a fresh address
		if err := s.AddCIDR("eni-0", pfx(fmt.Sprintf("10.0.0.%d/28", 16*i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Persist(); err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		seq  int
		acks = map[Key]int{} // assignment acknowledged at this seq
		dels = map[Key]int{} // release started at this seq
	)
	now := func() int { mu.Lock(); defer mu.Unlock(); seq++; return seq }
	done := make(chan struct{})
	errs := make(chan error, 1)
	t.Cleanup(func() { // before TempDir's: no fold may still write there
		<-done
		if err := lc.Close(); err != nil {
			t.Error(err)
		}
	})
	go func() {
		defer close(done)
		for i := 0; i < 240; i++ {
			if i%4 == 3 { // release an earlier pod now and then
				k := podKey(i - 3)
				at := now()
				mu.Lock()
				dels[k] = at
				mu.Unlock()
				if _, err := s.Unassign(k); err != nil {
					errs <- err
					return
				}
				continue
			}
			if _, err := s.Assign(podKey(i), podMeta(i)); err != nil {
				errs <- err
				return
			}
			at := now()
			mu.Lock()
			acks[podKey(i)] = at
			mu.Unlock()
		}
	}()
	reads := 0
	for running := true; running; reads++ {
		select {
		case <-done:
			running = false
		default:
		}
		start := now()
		f, err := NewFileCheckpointer(path).Read()
		end := now()
		if err != nil {
			t.Fatalf("read %d: %v", reads, err)
		}
		mu.Lock()
		for k, at := range acks {
			if at < start && (dels[k] == 0 || dels[k] > end) && !fileHasKey(f, k) {
				mu.Unlock()
				t.Fatalf("read %d misses %s, acknowledged before the read began", reads, k)
			}
		}
		mu.Unlock()
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	t.Logf("%d reads", reads)
}
