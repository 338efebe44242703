package localvpc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// daemon is a long-running process of a node (containerd, kubelet) whose
// output goes to <node>/kube/<name>.log.
type daemon struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startDaemon(n *Node, name string, env []string, argv ...string) (*daemon, error) {
	logPath := filepath.Join(n.Dir, "kube", name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("node %s: %s log: %w", n.ID, name, err)
	}
	// Not CommandContext: stop() manages its life.
	cmd, err := n.Command(context.Background(), env, "", argv...)
	if err != nil {
		logf.Close()
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := startChild(cmd); err != nil {
		logf.Close()
		return nil, fmt.Errorf("node %s: start %s: %w", n.ID, name, err)
	}
	d := &daemon{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		logf.Close()
		close(d.done)
	}()
	n.log.Info("started", "node", n.ID, "daemon", name, "pid", cmd.Process.Pid)
	return d, nil
}

// stop sends SIGTERM to the daemon (by pid) and SIGKILL after grace.
func (d *daemon) stop(grace time.Duration) error {
	select {
	case <-d.done:
		return nil
	default:
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("stop %s: %w", d.name, err)
	}
	select {
	case <-d.done:
	case <-time.After(grace):
		_ = d.cmd.Process.Kill() // did not stop on SIGTERM
		<-d.done
	}
	return nil
}

func (d *daemon) logTail() string {
	b, err := os.ReadFile(d.log)
	if err != nil {
		return ""
	}
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return d.name + " log tail (" + d.log + "):\n" + string(b)
}

const cgroupFS = "/sys/fs/cgroup"

// cgroupDirs lists root's directory in every mounted cgroup hierarchy
// (v1 controllers and the unified one), deepest first.
func cgroupDirs(root string) []string {
	if !strings.HasPrefix(root, "/"+dataplane.NamePrefix) {
		return nil // never walk a cgroup this package did not name
	}
	hier, _ := filepath.Glob(filepath.Join(cgroupFS, "*")) // no error for a constant pattern
	hier = append(hier, cgroupFS)
	var dirs []string
	for _, h := range hier {
		top := filepath.Join(h, root)
		_ = filepath.WalkDir(top, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil // a hierarchy without this cgroup is fine
		})
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	return dirs
}

// killCgroupTree SIGKILLs every process in cgroup root (in any hierarchy)
// and waits up to 10 s for them to be gone.
func killCgroupTree(root string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := 0
		for _, d := range cgroupDirs(root) {
			b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
					left++
					_ = syscall.Kill(pid, syscall.SIGKILL) // may be exiting already
				}
			}
		}
		if left == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s: %d processes still alive after SIGKILL", root, left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// removeCgroupTree removes root's (empty) cgroups, deepest first.
func removeCgroupTree(root string) error {
	var errs []error
	for _, d := range cgroupDirs(root) {
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("remove cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// makeCgroupRoot creates root in every cgroup hierarchy, as kubelet
// requires its --cgroup-root to exist. A v1 cpuset cgroup starts with no
// CPUs or memory nodes; it gets its parent's.
func makeCgroupRoot(root string) error {
	if !strings.HasPrefix(root, "/"+dataplane.NamePrefix) {
		return fmt.Errorf("cgroup root %q is not one of ours", root)
	}
	hier, _ := filepath.Glob(filepath.Join(cgroupFS, "*")) // no error for a constant pattern
	for _, h := range hier {
		if _, err := os.Stat(filepath.Join(h, "cgroup.procs")); err != nil {
			continue // not a hierarchy
		}
		dir := filepath.Join(h, root)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return fmt.Errorf("cgroup %s: %s: %w", dir, f, err)
				}
			}
		}
	}
	return nil
}

// cgroupMountScript returns shell lines that mount, at cgroupFS, the cgroup
// hierarchies this machine has there (a tmpfs holding one mount per v1
// hierarchy, and cgroup2 where it is mounted).
func cgroupMountScript() (string, error) {
	data, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return "", fmt.Errorf("cgroup mounts: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "mount -t tmpfs -o mode=755 cgroup_root %s\n", cgroupFS)
	found := false
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[1], cgroupFS+"/") {
			continue
		}
		switch f[2] {
		case "cgroup":
			var opts []string
			for _, o := range strings.Split(f[3], ",") {
				if o != "rw" && o != "relatime" && o != "ro" {
					opts = append(opts, o)
				}
			}
			fmt.Fprintf(&b, "mkdir -p %s\nmount -t cgroup -o %s cgroup %s\n", f[1], strings.Join(opts, ","), f[1])
			found = true
		case "cgroup2":
			fmt.Fprintf(&b, "mkdir -p %s\nmount -t cgroup2 cgroup2 %s\n", f[1], f[1])
			found = true
		}
	}
	if !found {
		return "", fmt.Errorf("no cgroup hierarchies mounted under %s", cgroupFS)
	}
	return b.String(), nil
}
