package earlysignal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// helperEnv makes the test binary act as a command whose start-up is slow:
// it says "starting", waits for a line on stdin (the packages a real
// command still initialises), then takes its signal context and says
// whether it is already cancelled.
const helperEnv = "EARLYSIGNAL_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		fmt.Println("starting")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		ctx, stop := NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		select {
		case <-ctx.Done():
			fmt.Println("interrupted")
		default:
			fmt.Println("running on")
		}
		return
	}
	os.Exit(m.Run())
}

// startHelper starts the helper, through a shell that ignores SIGINT first
// when ignored (as a shell script starts a background job), and waits
// until it has started.
func startHelper(t *testing.T, ignored bool) (cmd *exec.Cmd, send func(), out *bufio.Reader) {
	t.Helper()
	trap := ""
	if ignored {
		trap = `trap "" INT; `
	}
	cmd = exec.Command("sh", "-c", trap+`exec "$0"`, os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	out = bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); line != "starting\n" {
		t.Fatalf("helper said %q, %v; want starting", line, err)
	}
	return cmd, func() { _, _ = stdin.Write([]byte("go on\n")) }, out
}

// A command started with SIGINT ignored (a background job of a script) and
// sent SIGINT while it is still starting, before main asks for signals,
// finds its context cancelled: before, Go dropped that SIGINT and
// `localvpc up` went on to build the whole VPC.
func TestSIGINTDuringStartUpCancels(t *testing.T) {
	cmd, goOn, out := startHelper(t, true)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	// The signal is delivered by the time the helper reads its next line
	// only if something catches it; wait until the kernel has dealt with it.
	waitNoPendingSIGINT(t, cmd.Process.Pid)
	goOn()
	if line, err := out.ReadString('\n'); line != "interrupted\n" {
		t.Errorf("after a SIGINT during start-up the helper said %q (%v), want interrupted", line, err)
	}
}

// Without SIGINT ignored at start nothing changes: a SIGINT before main
// asks for it ends the command at once, as Ctrl-C should.
func TestSIGINTDuringStartUpNotIgnoredEnds(t *testing.T) {
	cmd, _, _ := startHelper(t, false)
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGINT {
			t.Errorf("helper ended with %v, want killed by SIGINT", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("helper still running 60s after SIGINT")
	}
}

// waitNoPendingSIGINT waits until pid has no SIGINT pending (the kernel has
// delivered it to a handler or discarded it).
func waitNoPendingSIGINT(t *testing.T, pid int) {
	t.Helper()
	err := testutil.Eventually(t.Context(), 30*time.Second, func() error {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return err
		}
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && (k == "SigPnd" || k == "ShdPnd") {
				var mask uint64
				_, _ = fmt.Sscanf(strings.TrimSpace(v), "%x", &mask)
				if mask&(1<<(syscall.SIGINT-1)) != 0 {
					return fmt.Errorf("SIGINT pending (%s %s)", k, strings.TrimSpace(v))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
