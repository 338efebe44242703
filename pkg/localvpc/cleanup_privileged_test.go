package localvpc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// workingWait bounds a wait for what works (a process starting in or
// leaving a namespace): a loaded CI machine can take many seconds to run
// it, and a broken path still fails by then.
const workingWait = 30 * time.Second

// startSleeper starts `sleep` in the namespace at nsPath with env and
// makes sure it is reaped (killed first if it is still alive) at the end.
func startSleeper(t *testing.T, nsPath string, env []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("nsenter", "--net="+nsPath, "--", "sleep", "300")
	cmd.Env = env
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	// nsenter execs sleep in place; wait until it has joined the namespace.
	var want syscall.Stat_t
	if err := syscall.Stat(nsPath, &want); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	err := testutil.Eventually(context.Background(), workingWait, func() error {
		var st syscall.Stat_t
		if err := syscall.Stat("/proc/"+pid+"/ns/net", &st); err != nil || st.Ino != want.Ino {
			return fmt.Errorf("not in the namespace yet (%v)", err)
		}
		if comm, _ := os.ReadFile("/proc/" + pid + "/comm"); string(comm) != "sleep\n" {
			return fmt.Errorf("runs %q, not sleep yet", comm)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("pid %s never entered %s as sleep: %v", pid, nsPath, err)
	}
	return cmd
}

func alive(pid int) bool {
	// A killed but not yet reaped child is a zombie: not alive.
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// "pid (comm) S ..." — the state follows the last ')'.
	for i := len(data) - 1; i >= 0; i-- {
		if data[i] == ')' {
			return i+2 < len(data) && data[i+2] != 'Z'
		}
	}
	return false
}

// Stale-run cleanup kills only processes that carry a dead run's marker:
// a foreign process in the same namespace, and a process of another run,
// survive.
func TestPrivilegedKillOnlyMarkedProcesses(t *testing.T) {
	testutil.Privileged(t)
	ns := testutil.NewNS(t)
	base := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	ours := startSleeper(t, ns.Path(), withRunMarker(base, "deadrun"))
	foreign := startSleeper(t, ns.Path(), base)
	otherRun := startSleeper(t, ns.Path(), withRunMarker(base, "liverun"))

	killed, err := killProcessesIn([]string{ns.Path()}, map[string]bool{"deadrun": true})
	if err != nil {
		t.Fatal(err)
	}
	if killed != 1 {
		t.Errorf("killed %d processes, want 1 (the dead run's)", killed)
	}
	err = testutil.Eventually(context.Background(), workingWait, func() error {
		if alive(ours.Process.Pid) {
			return fmt.Errorf("pid %d alive", ours.Process.Pid)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the dead run's process survived: %v", err)
	}
	if !alive(foreign.Process.Pid) {
		t.Errorf("a foreign process (no %s) was killed", RunEnv)
	}
	if !alive(otherRun.Process.Pid) {
		t.Errorf("a process of another run was killed")
	}
}

func TestWithRunMarkerReplacesInherited(t *testing.T) {
	got := withRunMarker([]string{"A=1", RunEnv + "=old", "B=2"}, "new")
	want := []string{"A=1", "B=2", RunEnv + "=new"}
	if len(got) != len(want) {
		t.Fatalf("withRunMarker = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("withRunMarker = %q, want %q", got, want)
		}
	}
}
