// Command pause is the sandbox ("infra") container of the real-node tier's
// pods: it holds the pod's namespaces open, reaps orphans as PID 1 must, and
// exits on SIGTERM or SIGINT. No registry is reachable on the test machines,
// so the tier builds its own pause image around this static binary
// (docs/compatibility.md, "The aws-node image and the node runtime").
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for s := range sig {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			// Reap every exited child; stop when none is left to collect.
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
