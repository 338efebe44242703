package localvpc

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Stopping a node while other goroutines still reach into it (a test's
// socket path, a plugin Exec, AnchorPID) is a race on the anchor unless
// the anchor is read safely: go test -race fails here otherwise. After the
// stop, each of them sees a stopped node (or a dead pid), never a crash.
func TestPrivilegedNodeStopWhileInUse(t *testing.T) {
	v := startVPC(t)
	n := v.Nodes()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = n.SocketPath()
				_ = n.AnchorPID()
				_, _ = n.Command(ctx, nil, "", "true")
				_, _, _ = n.Exec(ctx, nil, nil, "/bin/true")
			}
		}()
	}
	// Let the readers run against a live node first.
	if _, stderr, err := n.Exec(ctx, nil, nil, "/bin/true"); err != nil {
		t.Fatalf("exec in a live node: %v (%s)", err, stderr)
	}
	if err := n.close(); err != nil {
		t.Errorf("close: %v", err)
	}
	close(stop)
	wg.Wait()
	if pid := n.AnchorPID(); pid != 0 {
		t.Errorf("AnchorPID after stop = %d, want 0", pid)
	}
	if _, _, err := n.Exec(ctx, nil, nil, "/bin/true"); err == nil {
		t.Errorf("Exec in a stopped node succeeded")
	}
	if _, err := n.Command(ctx, nil, "", "true"); err == nil {
		t.Errorf("Command in a stopped node succeeded")
	}
}
