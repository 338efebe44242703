package scripts

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// fakeGo stands in for the go command in the kube build scripts: "go
// build" appends "build PID" to $FAKEGO_LOG, waits until $FAKEGO_GO_ON
// exists (2 minutes at most, so it ends even when the test binary dies)
// and writes an executable at -o; any other go command does nothing.
const fakeGo = `#!/bin/sh
[ "$1" = build ] || exit 0
echo "build $$" >>"$FAKEGO_LOG"
n=0
while [ ! -e "$FAKEGO_GO_ON" ]; do
	n=$((n + 1))
	[ "$n" -le 2400 ] || exit 1
	sleep 0.05
done
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

// kubeBuild is a run of a kube build script with fakeGo as go, under dir.
type kubeBuild struct {
	cmd    *exec.Cmd
	stdout strings.Builder
	stderr string // a file, read while the script runs
}

// kubeBuildEnv puts fakeGo into dir/bin and returns the environment that
// makes the kube build scripts use it and a cache under dir; fakeGo logs
// to buildLog and goes on once goOn exists.
func kubeBuildEnv(t *testing.T, dir string) (env []string, buildLog, goOn string) {
	t.Helper()
	fakeBin := filepath.Join(dir, "bin")
	if err := os.Mkdir(fakeBin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(fakeBin, "go"), []byte(fakeGo), 0o755); err != nil {
		t.Fatal(err)
	}
	buildLog, goOn = filepath.Join(dir, "builds"), filepath.Join(dir, "go-on")
	env = append(os.Environ(), "PATH="+fakeBin+":"+os.Getenv("PATH"), "VPC_CNI_CACHE="+filepath.Join(dir, "cache"),
		"FAKEGO_LOG="+buildLog, "FAKEGO_GO_ON="+goOn)
	return env, buildLog, goOn
}

// startKubeBuild starts script in its own process group, which ends with
// ctx and with t: a test that fails while fakeGo waits would otherwise
// leave it behind, as killing bash does not end its children.
func startKubeBuild(ctx context.Context, t *testing.T, script string, env []string, stderr string) *kubeBuild {
	t.Helper()
	r := &kubeBuild{cmd: exec.CommandContext(ctx, "bash", script), stderr: stderr}
	r.cmd.Dir, r.cmd.Env, r.cmd.Stdout = ".", env, &r.stdout
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	r.cmd.Cancel = func() error { return syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL) }
	f, err := os.Create(stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own copy
	r.cmd.Stderr = f
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := r.cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if r.cmd.ProcessState == nil {
			_ = r.cmd.Wait()
		}
	})
	return r
}

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
			env, buildLog, goOn := kubeBuildEnv(t, dir)

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			runs := make([]*kubeBuild, 2)
			for i := range runs {
				runs[i] = startKubeBuild(ctx, t, script, env, filepath.Join(dir, fmt.Sprintf("stderr%d", i)))
			}
			builds := func() int {
				b, _ := os.ReadFile(buildLog)
				return strings.Count(string(b), "build ")
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

// TestKubeBuildStandInEndsWithTheTest: a test that ends while the stand-in
// go still waits (as TestKubeBuildsTwiceAtOnceBuildOnce does when it fails)
// leaves no stand-in running.
func TestKubeBuildStandInEndsWithTheTest(t *testing.T) {
	if _, err := exec.LookPath("flock"); err != nil {
		t.Skip("flock (util-linux) is not installed")
	}
	dir := t.TempDir()
	env, buildLog, _ := kubeBuildEnv(t, dir)
	t.Run("ends mid-build", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		startKubeBuild(ctx, t, "build-kube-apiserver.sh", env, filepath.Join(dir, "stderr"))
		err := testutil.Eventually(ctx, time.Minute, func() error {
			if b, _ := os.ReadFile(buildLog); !strings.Contains(string(b), "build ") {
				return errors.New("the stand-in go has not started building")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	b, err := os.ReadFile(buildLog)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Sscanf(string(b), "build %d", &pid); err != nil {
		t.Fatalf("stand-in go log %q: %v", b, err)
	}
	err = testutil.Eventually(context.Background(), 30*time.Second, func() error {
		if running(pid) {
			return fmt.Errorf("the stand-in go (pid %d) still runs after its test ended", pid)
		}
		return nil
	})
	if err != nil {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Error(err)
	}
}

// running reports whether pid is a process that has not exited.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z")
}
