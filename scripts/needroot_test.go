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

// linkTools puts links to the given tools (found on PATH) into dir, for a
// PATH that holds only them; it skips t when one is not installed.
func linkTools(t *testing.T, dir string, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		target, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s is not installed", tool)
		}
		if err := os.Symlink(target, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
}

// skipUnlessNonRootReads skips t when the user asNonRoot picks cannot
// read the files (a clone under /root, say): make would fail on that.
func skipUnlessNonRootReads(t *testing.T, files ...string) {
	t.Helper()
	for _, f := range files {
		cmd := exec.Command("/bin/sh", "-c", `test -r "$1"`, "sh", f)
		asNonRoot(cmd)
		if err := cmd.Run(); err != nil {
			t.Skipf("a user who is not root cannot read %s: %v", f, err)
		}
	}
}

// asNonRoot makes cmd run as nobody when the test runs as root.
func asNonRoot(cmd *exec.Cmd) {
	const nobody = 65534
	if os.Geteuid() == 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	}
}

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
	skipUnlessNonRootReads(t, filepath.Join(repo, "Makefile"))
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
			asNonRoot(cmd)
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

// TestMakeTestWithoutRootRunsTheUnitTier: `make test` as a user who is not
// root, on a machine missing the packages deps would install, goes on to
// the unit tier (README.md, "The two commands") instead of stopping in
// deps.
func TestMakeTestWithoutRootRunsTheUnitTier(t *testing.T) {
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// A PATH of the few tools make and scripts/test.sh use, so every
	// package deps checks for is missing, and a go that stops the run at
	// its first build or vet: the test looks only at which tiers it runs.
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil { // nobody runs from it
			t.Fatal(err)
		}
	}
	linkTools(t, dir, "bash", "sh", "make", "id", "dirname", "gofmt", "find", "git")
	skipUnlessNonRootReads(t, filepath.Join(repo, "Makefile"), filepath.Join(dir, "make"))
	stopGo := "#!/bin/sh\n[ \"$1\" = env ] && exit 0\necho \"go $1: stopped by the test\" >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte(stopGo), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "-C", repo, "test")
	cmd.Env = []string{"PATH=" + dir, "HOME=/nonexistent", "VPC_CNI_VM=0", "VPC_CNI_RACE=0"}
	asNonRoot(cmd)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run() // fails at the stand-in go either way
	if want := "test: running tiers: unit\n"; !strings.Contains(out.String(), want) {
		t.Errorf("make test as a user who is not root: output lacks %q:\n%s", want, out.String())
	}
}
