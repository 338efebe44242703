package childproc

import (
	"os/exec"
	"runtime"
	"sync"
	"testing"
	"time"
)

// A child started from a goroutine whose locked thread then exits must keep
// running: its death signal is tied to the spawner thread, not the caller's.
func TestChildOutlivesCallerThread(t *testing.T) {
	var cmd *exec.Cmd
	var err error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		runtime.LockOSThread() // not unlocked: the thread exits with the goroutine
		cmd = exec.Command("sleep", "30")
		err = Start(cmd)
	}()
	wg.Wait()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	// One Wait, in the goroutine: a second, deferred one raced it.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	reaped := false
	defer func() {
		if !reaped {
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	select {
	case err := <-done:
		reaped = true
		t.Fatalf("child died when its caller's thread exited: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
}
