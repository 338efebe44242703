package scripts

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// fakeAptGet stands in for apt-get: "update" fails as apt does on a held
// lists lock until $FAKEAPT_UNLOCKED exists, and "install" fails until then
// (no lists yet). Every update try appends a line to $FAKEAPT_LOG.
const fakeAptGet = `#!/bin/sh
cmd=
for a; do case $a in update|install) cmd=$a ;; esac; done
case $cmd in
update)
	echo update >>"$FAKEAPT_LOG"
	[ -e "$FAKEAPT_UNLOCKED" ] && exit 0
	echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 1 (apt-get)" >&2
	echo "E: Unable to lock directory /var/lib/apt/lists/" >&2
	exit 100 ;;
install) [ -e "$FAKEAPT_UNLOCKED" ] || exit 100 ;;
esac
`

// TestScriptsWaitForHeldAptListsLock: scripts/install-deps.sh and
// scripts/vm-kernel.sh on a fresh machine whose apt lists lock is held
// (apt-daily's update at boot) wait for it and then install, instead of
// failing at once. apt-get, id (root), go and dpkg-deb are stand-ins on a
// PATH that holds nothing else, so the machine's apt is never reached.
func TestScriptsWaitForHeldAptListsLock(t *testing.T) {
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, script := range []string{"install-deps.sh", "vm-kernel.sh"} {
		t.Run(script, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			linkTools(t, bin, "bash", "dirname", "sleep")
			for name, body := range map[string]string{
				"apt-get":  fakeAptGet,
				"id":       "#!/bin/sh\necho 0\n",
				"go":       "#!/bin/sh\n[ \"$1\" = env ] && echo /nonexistent\nexit 0\n",
				"dpkg-deb": "#!/bin/sh\nexit 0\n",
			} {
				if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// A kernel already cached: vm-kernel.sh stops after installing qemu.
			cache := filepath.Join(dir, "cache")
			for name, data := range map[string]string{"version": "6.1.0\n", "vmlinuz": "", "modules.order": "veth.ko\n"} {
				if err := os.MkdirAll(filepath.Join(cache, "vm-kernel"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(cache, "vm-kernel", name), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			aptLog, unlocked := filepath.Join(dir, "apt-log"), filepath.Join(dir, "unlocked")

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, filepath.Join(repo, "scripts", script))
			cmd.Env = []string{"PATH=" + bin, "HOME=" + dir, "VPC_CNI_CACHE=" + cache,
				"FAKEAPT_LOG=" + aptLog, "FAKEAPT_UNLOCKED=" + unlocked}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()

			// Release the lock once apt-get update has met it.
			err := testutil.Eventually(ctx, time.Minute, func() error {
				if b, _ := os.ReadFile(aptLog); strings.Contains(string(b), "update") {
					return nil
				}
				return errors.New("apt-get update has not run yet")
			})
			if err != nil {
				cancel()
				<-done
				t.Fatalf("%v\n%s", err, out.String())
			}
			if err := os.WriteFile(unlocked, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("%s gave up on the held apt lists lock instead of waiting: %v\n%s", script, err, out.String())
			}
			if b, _ := os.ReadFile(aptLog); strings.Count(string(b), "update") < 2 {
				t.Errorf("%s: apt-get update ran once, want it tried again after the lock was released:\n%s", script, out.String())
			}
			if want := "waiting up to 5 minutes"; !strings.Contains(out.String(), want) {
				t.Errorf("%s: output lacks %q:\n%s", script, want, out.String())
			}
		})
	}
}
