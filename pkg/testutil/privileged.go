// Package testutil holds the few helpers shared by the project's test tiers.
package testutil

import (
	"os"
	"testing"
)

// PrivilegedEnv is set by `make test` when the machine can run tests that
// need root, network namespaces and iptables.
const PrivilegedEnv = "VPC_CNI_PRIVILEGED"

// Privileged skips t unless the privileged tier is enabled. Privileged tests
// are named TestPrivileged* so `go test -run TestPrivileged` selects them.
func Privileged(tb testing.TB) {
	tb.Helper()
	if os.Getenv(PrivilegedEnv) != "1" {
		tb.Skipf("privileged tier disabled: set %s=1 and run as root (make test does)", PrivilegedEnv)
	}
	if os.Geteuid() != 0 {
		tb.Skipf("privileged tier needs root (euid %d)", os.Geteuid())
	}
}
