// Package agentbin builds the node agent binaries (ipamd, aws-cni and the
// aws-vpc-cni installer) once per test binary, for the end-to-end tests that
// run them in the local VPC.
package agentbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// Env names a directory of prebuilt binaries (e.g. bin/ after make build)
// to use instead of building.
const Env = "VPC_CNI_E2E_BIN"

var (
	once   sync.Once
	inMain bool   // Main runs this test binary's tests
	dir    string // the binaries' directory
	built  bool   // dir was made here (not Env's), so Main removes it
	err    error
	// build fills dir with the binaries; agentbin's own test stands in
	// for it to check Main's cleanup without a build.
	build = buildAgents
)

// Main runs the package's tests, then removes the binaries Dir built:
// about 100 MB per test binary, which a temporary directory left behind
// by every run would pile up on a CI machine's disk. A package whose tests
// call Dir has
//
//	func TestMain(m *testing.M) { os.Exit(agentbin.Main(m)) }
func Main(m *testing.M) int {
	inMain = true
	code := m.Run()
	if built {
		_ = os.RemoveAll(dir) // best effort: a temp dir
	}
	return code
}

// RepoRoot is the module root, found from this file's location so it works
// from any test package.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
}

// PluginBuildArgs are the build flags of the aws-cni plugin, kept equal to
// the Makefile's (PLUGIN_TAGS, with CGO_ENABLED=0 in the environment).
var PluginBuildArgs = []string{"-tags", "grpcnotrace", "./cmd/aws-cni"}

// Dir returns the directory holding the agent binaries, building them the
// first time it is called in this test binary. The package's TestMain must
// call Main, which removes them at the end.
func Dir(t testing.TB) string {
	t.Helper()
	if !inMain {
		t.Fatal("agentbin.Dir needs TestMain to call agentbin.Main(m)")
	}
	once.Do(func() {
		if d := os.Getenv(Env); d != "" {
			dir = d
			return
		}
		if dir, err = os.MkdirTemp("", "vpccni-agent-bin-"); err != nil {
			return
		}
		built = true
		err = build(dir)
	})
	if err != nil {
		t.Fatalf("building the agent binaries: %v", err)
	}
	return dir
}

// buildAgents builds ipamd, the installer and the plugins into dir.
func buildAgents(dir string) error {
	root := RepoRoot()
	pkgs := []string{"./cmd/ipamd"}
	if _, statErr := os.Stat(filepath.Join(root, "cmd", "aws-vpc-cni")); statErr == nil {
		pkgs = append(pkgs, "./cmd/aws-vpc-cni")
	}
	plugin := PluginBuildArgs
	if _, statErr := os.Stat(filepath.Join(root, "cmd", "egress-cni")); statErr == nil {
		plugin = append(slices.Clone(plugin), "./cmd/egress-cni")
	}
	cmd := exec.Command("go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %w\n%s", pkgs, err, out)
	}
	// The plugins as make build makes them: static, without grpc's trace,
	// with the Makefile's PLUGIN_ENV collector setting.
	cmd = exec.Command("go", append([]string{"build", "-o", dir + "/"}, plugin...)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOEXPERIMENT=nogreenteagc")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %v: %w\n%s", plugin, err, out)
	}
	return nil
}
