package vm

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/test/vm/vmenv"
)

// TestVMBranchDelWithoutResult boots the guest kernel and runs there, on
// real 802.1Q links, the aws-cni DEL of a branch pod that has neither
// prevResult nor ipamd (test/vm/cniplugin's
// TestVMPluginBranchDelWithoutResult): the cmd/aws-cni test of that DEL
// runs on a stand-in link, as the host kernel lacks 802.1Q.
func TestVMBranchDelWithoutResult(t *testing.T) {
	if os.Getenv("VPC_CNI_VM") == "0" {
		t.Skip("VM tier disabled by VPC_CNI_VM=0")
	}
	if testing.Short() {
		t.Skip("VM tier skipped in -short mode")
	}
	const name = "TestVMPluginBranchDelWithoutResult"
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
	g := Guest{Init: filepath.Join(dir, "init"), Files: map[string]string{"/bin/aws-cni": filepath.Join(dir, "aws-cni")}}
	goBuild(t, repo, "build", "-o", dir+"/", "./test/vm/vminit", "./cmd/aws-cni")
	if err := os.Rename(filepath.Join(dir, "vminit"), g.Init); err != nil {
		t.Fatal(err)
	}
	goBuild(t, repo, "test", "-c", "-o", dir+"/", "./test/vm/cniplugin")
	g.Tests = []Binary{{
		Name:     "cniplugin.test",
		HostPath: filepath.Join(dir, "cniplugin.test"),
		Args:     []string{"-test.v", "-test.count=1", "-test.timeout=3m", "-test.run", "^" + name + "$"},
		Env:      []string{vmenv.Env + "=1", "VPC_CNI_PRIVILEGED=1", "VPC_CNI_AWS_CNI=/bin/aws-cni"},
	}}
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
	if !res.Passed || !strings.Contains(res.Output, "--- PASS: "+name+" ") || strings.Contains(res.Output, "--- SKIP") {
		t.Fatalf("%s did not pass in the guest (verdict %s)\nguest console:\n%s", name, res.Verdict, res.Output)
	}
	if testing.Verbose() {
		t.Logf("guest console:\n%s", res.Output)
	}
}
