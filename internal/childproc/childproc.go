// Package childproc starts child processes that die with their parent.
//
// Children get a parent-death signal so nothing outlives a crashed test or
// driver. Linux ties that signal to the *thread* that forked, not the
// process, and code that visits network namespaces ends its OS threads
// afterwards: a child forked from such a thread would be killed at once.
// So every start goes through one OS thread that lives as long as the
// process.
package childproc

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

var (
	once sync.Once
	reqs chan request
)

type request struct {
	cmd  *exec.Cmd
	errc chan error
}

// Start starts cmd with SIGKILL as its parent-death signal, forked from a
// thread that never exits. Other SysProcAttr fields are kept.
func Start(cmd *exec.Cmd) error {
	once.Do(func() {
		reqs = make(chan request)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread must outlive every child
			for r := range reqs {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	errc := make(chan error, 1)
	reqs <- request{cmd: cmd, errc: errc}
	return <-errc
}
