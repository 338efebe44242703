package resourcecontroller

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// logBuffer is an io.Writer safe for the controller's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// TestSweepFailureWarnedOncePerCause: the start-up sweep of lost branches
// (lostbranches.go) is retried at each GC pass until it succeeds, and its
// failure is to be told once per cause. EC2 refuses its describe
// (UnauthorizedOperation: an IAM policy without it) at every pass: one
// warning, not one per pass. Before, the note was keyed by the error's
// text, which names each request's id, so every pass warned again.
func TestSweepFailureWarnedOncePerCause(t *testing.T) {
	w := newWorld(t)
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "DescribeNetworkInterfaces", Code: "UnauthorizedOperation"}}}); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	c, err := New(Config{ClusterName: "test", VPCID: simtest.VPCID, GCInterval: 20 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil))}, w.ec2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.runGC(ctx) }()
	waitFor(t, 30*time.Second, "5 refused sweeps", func() (bool, string) {
		n := w.env.Sim.Stats().Errors["DescribeNetworkInterfaces"]["UnauthorizedOperation"]
		return n >= 5, fmt.Sprint(n)
	})
	cancel()
	<-done
	const msg = "sweeping the branch ENIs of instances no node names"
	if n := logs.count(msg); n != 1 {
		t.Errorf("%d warnings %q for 5 refusals with one cause, want 1", n, msg)
	}
}
