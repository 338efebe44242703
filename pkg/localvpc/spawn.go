package localvpc

import (
	"os/exec"
	"syscall"

	"github.com/vpc-cni/vpc-cni/internal/childproc"
)

// startChild starts a node process that dies with the driver (the data
// plane discards OS threads after visiting namespaces, so childproc forks
// from a thread that lives as long as the process) in its own process group,
// so Ctrl-C reaches the driver, which stops children in order.
func startChild(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	return childproc.Start(cmd)
}
