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
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// A PATH with only what the script needs before its etcd check: no
	// etcd, and no make or go, so a script that went on to build or start
	// a tour fails on those instead.
	path := t.TempDir()
	linkTools(t, path, "bash", "dirname", "id")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(repo, "scripts", "demo.sh"))
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
