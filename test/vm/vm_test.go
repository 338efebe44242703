package vm

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/test/vm/vmenv"
)

// bootTimeout bounds one guest run. An idle machine with KVM needs a few
// seconds and a loaded one in software emulation under a minute; past
// this the guest is taken to be hung.
const bootTimeout = 4 * time.Minute

// guestTests are the tests that must run, and pass, inside the guest, by
// package: a skip there means the tier proved nothing, so it fails here.
var guestTests = []struct {
	pkg   string
	names []string
}{
	{"./pkg/podnet", []string{
		"TestVMBranchStrict",
		"TestVMBranchStandard",
		"TestVMBranchStrictEarlyDemux",
		"TestVMBranchStrictIPv6",
		"TestVMBranchReplacesStaleVLAN",
		"TestVMBranchWrongVLANIsIsolated",
	}},
	{"./test/vm/cniplugin", []string{"TestVMPluginBranchPod"}},
}

// TestVMBranchENIWiring boots Debian's cloud kernel under qemu and runs
// the branch-ENI wiring there on real 802.1Q links: pkg/podnet's
// SetupBranch and TeardownBranch, then the aws-cni binary itself.
func TestVMBranchENIWiring(t *testing.T) {
	if os.Getenv("VPC_CNI_VM") == "0" {
		t.Skip("VM tier disabled by VPC_CNI_VM=0")
	}
	if testing.Short() {
		t.Skip("VM tier skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout+3*time.Minute)
	defer cancel()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	k, err := PrepareKernel(ctx, repo)
	if err != nil {
		t.Skipf("VM tier skipped: no guest kernel or qemu: %v", err)
	}
	dir := t.TempDir()
	start := time.Now()
	g := Guest{Init: filepath.Join(dir, "init"), Files: map[string]string{"/bin/aws-cni": filepath.Join(dir, "aws-cni")}}
	// One build per kind: the go command compiles the packages in parallel.
	goBuild(t, repo, "build", "-o", dir+"/", "./test/vm/vminit", "./cmd/aws-cni")
	if err := os.Rename(filepath.Join(dir, "vminit"), g.Init); err != nil {
		t.Fatal(err)
	}
	pkgs := []string{"test", "-c", "-o", dir + "/"}
	for _, gt := range guestTests {
		pkgs = append(pkgs, gt.pkg)
		name := filepath.Base(gt.pkg) + ".test"
		g.Tests = append(g.Tests, Binary{
			Name:     name,
			HostPath: filepath.Join(dir, name),
			Args:     []string{"-test.v", "-test.count=1", "-test.timeout=3m", "-test.run", "^(" + strings.Join(gt.names, "|") + ")$"},
			Env:      []string{vmenv.Env + "=1", "VPC_CNI_PRIVILEGED=1", "VPC_CNI_AWS_CNI=/bin/aws-cni"},
		})
	}
	goBuild(t, repo, pkgs...)
	t.Logf("static binaries built in %s", time.Since(start).Round(time.Millisecond))

	initrd := filepath.Join(dir, "initrd")
	if err := WriteInitramfs(initrd, k, g); err != nil {
		t.Fatal(err)
	}
	bootCtx, cancelBoot := context.WithTimeout(ctx, bootTimeout)
	defer cancelBoot()
	res, err := Boot(bootCtx, k, initrd, nil)
	t.Logf("VM run (kernel %s, accel %s) took %s", k.Version, res.Accel, res.Elapsed.Round(time.Millisecond))
	if err != nil {
		t.Fatalf("%v\nguest console:\n%s", err, res.Output)
	}
	if !res.Passed {
		t.Fatalf("guest verdict: %s\nguest console:\n%s", res.Verdict, res.Output)
	}
	for _, gt := range guestTests {
		for _, n := range gt.names {
			if !strings.Contains(res.Output, "--- PASS: "+n+" ") {
				t.Errorf("%s: %s did not pass in the guest (skipped or missing)", gt.pkg, n)
			}
		}
	}
	if strings.Contains(res.Output, "--- SKIP") {
		t.Errorf("a guest test skipped, so the tier did not prove what it claims")
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("guest console:\n%s", res.Output)
	}
}

// goBuild builds static binaries, as the guest has no C library, without
// symbol tables and DWARF, which the guest would load for nothing: panics
// still name functions.
func goBuild(t *testing.T, repo string, args ...string) {
	t.Helper()
	args = append([]string{args[0], "-ldflags=-s -w"}, args[1:]...)
	cmd := exec.Command("go", args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}
