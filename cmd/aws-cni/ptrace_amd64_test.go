package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"golang.org/x/sys/unix"
)

// runKilledAtSend runs the plugin for c in the node's namespace under
// ptrace and SIGKILLs it at the entry of its nth sendto: the plugin's
// only sendto calls are its netlink requests (gRPC and the log write), so
// the kill lands before its nth request to the kernel, a point no timing
// could hit. Before the kill, stopped() runs with the plugin's other
// threads still going. It reports false when the plugin exited on its own
// before an nth sendto, and then whether it succeeded. The tracer waits for
// any child (it cannot know the plugin's thread ids in advance), so no
// test of this package may start processes in parallel with it.
func (n node) runKilledAtSend(t *testing.T, c call, nth int, stopped func()) (killed, ok bool) {
	t.Helper()
	stdin, err := json.Marshal(c.conf)
	if err != nil {
		t.Fatal(err)
	}
	// A file, not a pipe: the process is reaped here, not by cmd.Wait,
	// so no copying goroutine may wait on it.
	in := filepath.Join(t.TempDir(), "stdin")
	if err := os.WriteFile(in, stdin, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// ptrace calls must come from the thread that started the tracee:
	// ns.Do runs all of it on one locked thread.
	err = n.ns.Do(func(ns.NetNS) error {
		cmd := c.cmd(nil)
		cmd.Stdin = f
		cmd.SysProcAttr = &unix.SysProcAttr{Ptrace: true}
		if err := cmd.Start(); err != nil {
			return err
		}
		killed, ok, err = traceSends(cmd.Process.Pid, nth, stopped)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return killed, ok
}

// traceSends follows every thread of the traced process pid from its exec
// stop until it is gone; see runKilledAtSend.
func traceSends(pid, nth int, stopped func()) (killed, ok bool, err error) {
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
		return false, false, err
	}
	opts := unix.PTRACE_O_TRACESYSGOOD | unix.PTRACE_O_TRACECLONE | unix.PTRACE_O_EXITKILL
	if err := unix.PtraceSetOptions(pid, opts); err != nil {
		return false, false, err
	}
	if err := unix.PtraceSyscall(pid, 0); err != nil {
		return false, false, err
	}
	inSyscall := map[int]bool{}
	sends := 0
	for {
		tid, err := unix.Wait4(-1, &ws, unix.WALL, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return killed, ok, err
		}
		if ws.Exited() || ws.Signaled() {
			if tid == pid {
				return killed, ws.Exited() && ws.ExitStatus() == 0, nil
			}
			continue
		}
		if !ws.Stopped() {
			continue
		}
		sig := 0
		switch s := ws.StopSignal(); {
		case s == unix.SIGTRAP|0x80:
			entering := !inSyscall[tid]
			inSyscall[tid] = entering
			var regs unix.PtraceRegs
			if entering && unix.PtraceGetRegs(tid, &regs) == nil && regs.Orig_rax == unix.SYS_SENDTO {
				sends++
				if sends == nth && !killed {
					stopped()
					killed = true
					_ = unix.Kill(pid, unix.SIGKILL)
				}
			}
		case s == unix.SIGTRAP || s == unix.SIGSTOP:
			// Clone events and the stop a new thread starts with.
		default:
			sig = int(s)
		}
		// A thread killed meanwhile cannot be resumed; its exit follows.
		_ = unix.PtraceSyscall(tid, sig)
	}
}
