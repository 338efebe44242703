package scripts

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// fakeGo stands in for the go command in the kube build scripts: "go
// build" appends a line to $FAKEGO_LOG, waits until $FAKEGO_GO_ON exists
// and writes an executable at -o; any other go command does nothing.
const fakeGo = `#!/bin/sh
[ "$1" = build ] || exit 0
echo build >>"$FAKEGO_LOG"
while [ ! -e "$FAKEGO_GO_ON" ]; do sleep 0.05; done
out=
while [ $# -gt 0 ]; do
	if [ "$1" = -o ]; then out=$2; fi
	shift
done
case "$out" in
*/) for b in kubelet kube-controller-manager kube-scheduler; do printf '#!/bin/sh\n' >"$out$b"; chmod +x "$out$b"; done ;;
*) printf '#!/bin/sh\n' >"$out"; chmod +x "$out" ;;
esac
`

// TestKubeBuildsTwiceAtOnceBuildOnce: two runs of a kube build script at
// the same time on a fresh cache (make demo beside make test) build once:
// the second waits for the first, and both print the built path.
func TestKubeBuildsTwiceAtOnceBuildOnce(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock (util-linux) is not installed")
	}
	for _, script := range []string{"build-kube-apiserver.sh", "build-kube-node.sh"} {
		t.Run(script, func(t *testing.T) {
			dir := t.TempDir()
			fakeBin := filepath.Join(dir, "bin")
			if err := os.Mkdir(fakeBin, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(fakeBin, "go"), []byte(fakeGo), 0o755); err != nil {
				t.Fatal(err)
			}
			cache := filepath.Join(dir, "cache")
			buildLog := filepath.Join(dir, "builds")
			goOn := filepath.Join(dir, "go-on")
			env := append(os.Environ(), "PATH="+fakeBin+":"+os.Getenv("PATH"), "VPC_CNI_CACHE="+cache,
				"FAKEGO_LOG="+buildLog, "FAKEGO_GO_ON="+goOn)

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			type run struct {
				cmd    *exec.Cmd
				stdout strings.Builder
				stderr string // a file, read while the script runs
			}
			runs := make([]*run, 2)
			for i := range runs {
				r := &run{cmd: exec.CommandContext(ctx, "bash", script), stderr: filepath.Join(dir, fmt.Sprintf("stderr%d", i))}
				r.cmd.Dir, r.cmd.Env, r.cmd.Stdout = ".", env, &r.stdout
				f, err := os.Create(r.stderr)
				if err != nil {
					t.Fatal(err)
				}
				r.cmd.Stderr = f
				if err := r.cmd.Start(); err != nil {
					t.Fatal(err)
				}
				_ = f.Close() // the child has its own copy
				runs[i] = r
			}
			builds := func() int {
				b, _ := os.ReadFile(buildLog)
				return strings.Count(string(b), "build\n")
			}
			// Both are in: each building, or one building and one waiting.
			err := testutil.Eventually(ctx, time.Minute, func() error {
				n := builds()
				if n == 2 {
					return nil
				}
				for _, r := range runs {
					b, _ := os.ReadFile(r.stderr)
					if n == 1 && strings.Contains(string(b), "waiting for another kube build") {
						return nil
					}
				}
				return fmt.Errorf("%d builds started, no run waiting", n)
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(goOn, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			var printed []string
			for i, r := range runs {
				if err := r.cmd.Wait(); err != nil {
					b, _ := os.ReadFile(r.stderr)
					t.Errorf("run %d: %v\n%s", i, err, b)
				}
				printed = append(printed, strings.TrimSpace(r.stdout.String()))
			}
			if n := builds(); n != 1 {
				t.Errorf("two runs at once built %d times, want once", n)
			}
			if printed[0] == "" || printed[0] != printed[1] {
				t.Errorf("the runs printed %q and %q, want the same built path", printed[0], printed[1])
			}
		})
	}
}
