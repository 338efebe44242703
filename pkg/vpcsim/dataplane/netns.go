package dataplane

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces are bind-mounted, as by
// `ip netns add`, so `ip netns exec` and nsenter can find them.
const NetnsDir = "/run/netns"

// NamePrefix starts the name of every namespace this package creates.
const NamePrefix = "vpcsim-"

// runName matches "vpcsim-<pid>x<hex>-" and captures the owner pid.
var runName = regexp.MustCompile(`^vpcsim-([0-9]+)x[0-9a-f]+-`)

// NewRunID returns a run id that embeds this process's pid, so CleanupStale
// can tell a crashed run's leftovers from a live run's namespaces.
func NewRunID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%dx%s", os.Getpid(), hex.EncodeToString(b))
}

// RunPrefix is the namespace-name prefix of the run with the given id.
func RunPrefix(runID string) string { return NamePrefix + runID + "-" }

// NsPath returns the bind-mount path of the named namespace.
func NsPath(name string) string { return filepath.Join(NetnsDir, name) }

// ensureNetnsDir makes NetnsDir a shared mount point, as `ip netns add` does,
// so namespaces created later propagate into mount namespaces cloned with
// slave propagation (the nodes' own mount namespaces).
func ensureNetnsDir() error {
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", NetnsDir, err)
	}
	err := unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s shared: %w", NetnsDir, err)
	}
	// Not yet a mount point: bind it onto itself first.
	if err := unix.Mount(NetnsDir, NetnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s onto itself: %w", NetnsDir, err)
	}
	if err := unix.Mount("", NetnsDir, "none", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", NetnsDir, err)
	}
	return nil
}

// createNamedNS creates a new network namespace and pins it at NsPath(name).
// The work happens on a throw-away OS thread: the goroutine never unlocks it,
// so the runtime destroys the thread instead of reusing it in the wrong
// namespace.
func createNamedNS(name string) (string, error) {
	if err := ensureNetnsDir(); err != nil {
		return "", err
	}
	path := NsPath(name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return "", fmt.Errorf("create netns mount point %s: %w", path, err)
	}
	_ = f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare netns: %w", err)
			return
		}
		self := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("pin netns at %s: %w", path, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		_ = os.Remove(path)
		return "", err
	}
	return path, nil
}

// deleteNamedNS unpins a namespace; the kernel destroys it (and the links in
// it) once no process, socket or open handle refers to it any more.
func deleteNamedNS(path string) error {
	err := unix.Unmount(path, unix.MNT_DETACH)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns mount point %s: %w", path, err)
	}
	return nil
}

// InNS runs fn on an OS thread that has joined the network namespace at
// path. Sockets opened by fn stay in that namespace after fn returns. The
// thread is discarded afterwards, so the caller's namespace never changes.
func InNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		f, err := os.Open(path)
		if err != nil {
			errc <- fmt.Errorf("open netns %s: %w", path, err)
			return
		}
		err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
		_ = f.Close()
		if err != nil {
			errc <- fmt.Errorf("join netns %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// ListNamespaces returns the names of pinned namespaces that start with prefix.
func ListNamespaces(prefix string) ([]string, error) {
	ents, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", NetnsDir, err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

// Cleanup removes every namespace whose name starts with prefix, for example
// RunPrefix(id) of a run that crashed. It refuses prefixes that do not start
// with NamePrefix so it can never touch namespaces of other software.
func Cleanup(prefix string) error {
	if !strings.HasPrefix(prefix, NamePrefix) {
		return fmt.Errorf("cleanup prefix %q: must start with %q", prefix, NamePrefix)
	}
	names, err := ListNamespaces(prefix)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		errs = append(errs, deleteNamedNS(NsPath(n)))
	}
	return errors.Join(errs...)
}

// CleanupStale removes the namespaces of every earlier run whose owner
// process is gone, and returns the run prefixes it removed. Runs of live
// processes (a concurrent test, another demo) are left alone.
func CleanupStale() ([]string, error) {
	names, err := ListNamespaces(NamePrefix)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var removed []string
	var errs []error
	for _, n := range names {
		m := runName.FindStringSubmatch(n)
		if m == nil {
			continue
		}
		prefix := m[0]
		if seen[prefix] {
			continue
		}
		seen[prefix] = true
		pid, err := strconv.Atoi(m[1])
		if err != nil || processAlive(pid) {
			continue
		}
		if err := Cleanup(prefix); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, prefix)
	}
	return removed, errors.Join(errs...)
}

// StaleRun reports whether runID belongs to a process that no longer exists.
func StaleRun(runID string) bool {
	m := runName.FindStringSubmatch(RunPrefix(runID))
	if m == nil {
		return false
	}
	pid, err := strconv.Atoi(m[1])
	return err == nil && !processAlive(pid)
}

func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	// A zombie (exited, not yet reaped) is dead for our purposes.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// sysctl writes one value below /proc/sys of the namespace at nsPath.
func sysctls(nsPath string, kv [][2]string) error {
	return InNS(nsPath, func() error {
		for _, p := range kv {
			file := filepath.Join("/proc/sys", strings.ReplaceAll(p[0], ".", "/"))
			if err := os.WriteFile(file, []byte(p[1]), 0o644); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", p[0], p[1], err)
			}
		}
		return nil
	})
}

// NewNamedNS creates a network namespace pinned at NsPath(name), with lo up,
// for callers that add their own namespaces to a run (pods). name must start
// with the run's prefix so Cleanup finds it.
func NewNamedNS(name string) (string, error) {
	if !strings.HasPrefix(name, NamePrefix) {
		return "", fmt.Errorf("namespace %q: name must start with %q", name, NamePrefix)
	}
	path, err := createNamedNS(name)
	if err != nil {
		return "", err
	}
	if err := InNS(path, bringLoUp); err != nil {
		_ = deleteNamedNS(path)
		return "", err
	}
	return path, nil
}

// DeleteNamedNS removes a namespace created by NewNamedNS.
func DeleteNamedNS(path string) error { return deleteNamedNS(path) }

// RunIDOf extracts the run id from a namespace name of this package.
func RunIDOf(nsName string) (string, bool) {
	m := runName.FindStringSubmatch(nsName)
	if m == nil {
		return "", false
	}
	return strings.TrimSuffix(strings.TrimPrefix(m[0], NamePrefix), "-"), true
}
