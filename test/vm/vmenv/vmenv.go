// Package vmenv gates the tests that run inside the VM test tier's guest
// (test/vm): they need a kernel with 802.1Q, which only that guest has.
package vmenv

import (
	"os"
	"testing"
)

// Env is set to 1 by the guest's /init for the test binaries it runs.
const Env = "VPC_CNI_IN_VM"

// Require skips tb unless it runs inside the VM tier's guest. Such tests
// are named TestVM* and are started by test/vm, never directly.
func Require(tb testing.TB) {
	tb.Helper()
	if os.Getenv(Env) != "1" {
		tb.Skipf("runs only inside the VM tier's guest kernel (test/vm sets %s=1)", Env)
	}
}

// The guest's /init (test/vm/vminit) and the host (test/vm) agree on these.
const (
	// ResultPrefix starts the console line that carries the guest's
	// verdict: "PASS" or "FAIL <reason>".
	ResultPrefix = "VMTIER-RESULT: "
	// TestList is the JSON list of Test the guest runs, in order.
	TestList = "/tests.json"
	// ModuleOrder lists the .ko files in ModuleDir in load order.
	ModuleOrder = "/modules.order"
	ModuleDir   = "/modules"
)

// Test is one test binary the guest runs.
type Test struct {
	Name string   `json:"name"`
	Path string   `json:"path"`
	Args []string `json:"args"`
	Env  []string `json:"env"`
}
