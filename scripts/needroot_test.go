// Package scripts holds tests of the Makefile targets and scripts a new
// user runs first (README.md, "The two commands").
package scripts

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nobody is the user the test runs make as when it is root.
const nobody = 65534

// TestMakeRootTargetsRefuseNonRootFirst: `make demo`, `make bench` and `make
// demo-k8s` as a user who is not root stop at once with a message saying
// root is needed, before installing packages or building anything.
func TestMakeRootTargetsRefuseNonRootFirst(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{"demo", "bench", "demo-k8s"} {
		t.Run(target, func(t *testing.T) {
			// BIN under a directory nobody may not write: a build would fail
			// there, a refusal never gets that far.
			bin := filepath.Join(t.TempDir(), "bin")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", repo, target, "BIN="+bin)
			// HOME nobody cannot write: what deps would do first (go install
			// into the module cache) fails there with another message.
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=/nonexistent"}
			if os.Geteuid() == 0 {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
			}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if err == nil {
				t.Fatalf("make %s as a user who is not root succeeded:\n%s", target, out.String())
			}
			if want := "make " + target + ": needs root"; !strings.Contains(out.String(), want) {
				t.Errorf("make %s as a user who is not root: output lacks %q:\n%s", target, want, out.String())
			}
			if _, err := os.Stat(bin); err == nil {
				t.Errorf("make %s as a user who is not root created %s before refusing", target, bin)
			}
		})
	}
}
