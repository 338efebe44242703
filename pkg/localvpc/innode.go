package localvpc

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// execInNode runs argv, whose argv[0] is an absolute path inside the node,
// with env (nil: ours), stdin and "/" as its working directory, forked straight into the
// node's mount and network namespaces, as a container runtime resident on
// a host forks a CNI plugin: one fork and one exec. nsenter (Command) costs
// a second exec of a dynamically linked binary per call, which on our
// 2-core machines was a fifth of figure 13's CPU (bench/README.md, "What
// caps churn").
//
// The fork happens on a locked OS thread that first leaves the process's
// shared filesystem context (unshare CLONE_FS, so it may join another
// mount namespace) and then joins the node's namespaces; the thread is
// never unlocked, so it ends with its goroutine and no other goroutine
// ever runs in the node.
func (n *Node) execInNode(ctx context.Context, env []string, stdin []byte, argv ...string) (stdout, stderr []byte, err error) {
	pid := n.AnchorPID()
	if pid == 0 {
		return nil, nil, fmt.Errorf("node %s: not running", n.ID)
	}
	mnt := fmt.Sprintf("/proc/%d/ns/mnt", pid)
	type result struct {
		stdout, stderr []byte
		err            error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
		var o, e bytes.Buffer
		err := joinNode(mnt, n.NetNS)
		if err == nil {
			cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
			if env == nil {
				env = os.Environ()
			}
			cmd.Env = withRunMarker(env, n.runID)
			cmd.Dir = "/"
			cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(stdin), &o, &e
			endGroupOnCancel(cmd)
			err = cmd.Run()
		}
		done <- result{o.Bytes(), e.Bytes(), err}
	}()
	r := <-done
	if r.err != nil {
		return r.stdout, r.stderr, fmt.Errorf("node %s: %s: %w", n.ID, argv[0], r.err)
	}
	return r.stdout, r.stderr, nil
}

// endGroupOnCancel makes cancelling cmd's context end cmd's whole process
// group, not cmd alone: a child it left behind would keep running in the
// node and hold its output open, so that Run never returned. WaitDelay
// bounds the wait for one that left the group.
func endGroupOnCancel(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.Cancel = func() error {
		if err := unix.Kill(-cmd.Process.Pid, unix.SIGKILL); err != unix.ESRCH {
			return err
		}
		return os.ErrProcessDone // as Process.Kill says it: no error for Wait to add
	}
	cmd.WaitDelay = 5 * time.Second
}

// joinNode moves the calling (locked, disposable) thread into the mount
// namespace at mnt and the network namespace at netns. Both are opened
// before either is joined, as nsenter does: netns is a path of the
// machine's mount namespace, which the node's may hide (a kube node mounts
// its own /run/netns, kubeMounts).
func joinNode(mnt, netns string) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare CLONE_FS: %w", err)
	}
	nss := []struct {
		path string
		kind int
		f    *os.File
	}{{path: mnt, kind: unix.CLONE_NEWNS}, {path: netns, kind: unix.CLONE_NEWNET}}
	defer func() {
		for _, ns := range nss {
			if ns.f != nil {
				_ = ns.f.Close()
			}
		}
	}()
	for i := range nss {
		f, err := os.Open(nss[i].path)
		if err != nil {
			return err // names the path
		}
		nss[i].f = f
	}
	for _, ns := range nss {
		if err := unix.Setns(int(ns.f.Fd()), ns.kind); err != nil {
			return fmt.Errorf("join %s: %w", ns.path, err)
		}
	}
	return nil
}
