package scripts

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemoWithoutEtcdNamesThePackageAtOnce: scripts/demo.sh on a machine
// without etcd stops before the first tour, naming the Debian package to
// install, instead of after two tours.
func TestDemoWithoutEtcdNamesThePackageAtOnce(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("scripts/demo.sh refuses a user who is not root before it looks for etcd")
	}
	// A copy of the script in a tree with no bin/: should the etcd check
	// ever come after the build or a tour, the copy has no binaries to run
	// as root, where the real scripts/demo.sh would run the real tours.
	tree := t.TempDir()
	if err := os.Mkdir(filepath.Join(tree, "scripts"), 0o755); err != nil {
		t.Fatal(err)
	}
	demo, err := os.ReadFile("demo.sh") // it sources nothing
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "scripts", "demo.sh"), demo, 0o755); err != nil {
		t.Fatal(err)
	}
	// A PATH with only what the script needs before its etcd check: no
	// etcd, and no make or go, so a script that went on to build or start
	// a tour fails on those instead.
	path := t.TempDir()
	linkTools(t, path, "bash", "dirname", "id")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(tree, "scripts", "demo.sh"))
	cmd.Env = []string{"PATH=" + path, "HOME=" + t.TempDir()}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err == nil {
		t.Fatalf("scripts/demo.sh without etcd succeeded:\n%s", out.String())
	}
	if want := "apt-get install etcd-server"; !strings.Contains(out.String(), want) {
		t.Errorf("scripts/demo.sh without etcd: output lacks %q:\n%s", want, out.String())
	}
}
