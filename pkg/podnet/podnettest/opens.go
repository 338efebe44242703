package podnettest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// OpenWatch records which files of a directory are opened: a probe that a
// path handed to the plugin was, or was not, opened, with no device whose
// open has effects.
type OpenWatch struct {
	fd  int
	dir string
}

// WatchOpens starts recording opens in dir. The caller must Close it.
func WatchOpens(dir string) (*OpenWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_OPEN); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	return &OpenWatch{fd: fd, dir: dir}, nil
}

// Opened opens sentinel, a file of the directory, and returns the names
// of the files opened before it since the last call. The sentinel's own
// event says every earlier open has been read: no waiting on time.
func (w *OpenWatch) Opened(sentinel string) ([]string, error) {
	f, err := os.Open(filepath.Join(w.dir, sentinel))
	if err != nil {
		return nil, err
	}
	f.Close()
	var opened []string
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.PathMax))
	for {
		n, err := unix.Read(w.fd, buf)
		if err != nil {
			return nil, fmt.Errorf("read inotify: %w", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := unix.ByteSliceToString(buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)])
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if name == sentinel {
				return opened, nil
			}
			opened = append(opened, name)
		}
	}
}

// OpenProbes makes a temporary directory holding a regular file
// "regular", a FIFO "fifo", a symlink "link" to the regular file and the
// file "sentinel" for Opened, and records the opens in it until the test
// ends.
func OpenProbes(t testing.TB) *OpenWatch {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"regular", "sentinel"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "regular"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	w, err := WatchOpens(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return w
}

// Dir is the watched directory.
func (w *OpenWatch) Dir() string { return w.dir }

// Close stops recording.
func (w *OpenWatch) Close() { unix.Close(w.fd) }
