package ipamd

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// Demands that arrive while a run is in progress coalesce into one more run.
func TestTriggerCoalesces(t *testing.T) {
	tr := newTrigger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var runs atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr.Run(ctx, time.Hour, 0, func(context.Context) {
			runs.Add(1)
			started <- struct{}{}
			<-release
		})
	}()
	tr.Fire()
	<-started // first run in progress
	for range 100 {
		tr.Fire()
	}
	release <- struct{}{} // end run 1
	<-started             // the coalesced run
	release <- struct{}{}
	cancel()
	<-done
	if got := runs.Load(); got != 2 {
		t.Errorf("%d runs for 101 demands (100 during a run), want 2", got)
	}
}

// TestReconcileDue: a reconcile waits for a quiet interval after the last
// pool action, but constant churn postpones it at most maxReconcileGap.
func TestReconcileDue(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name                        string
		sinceAction, sinceReconcile time.Duration
		want                        bool
	}{
		{"quiet", 2 * time.Minute, time.Minute, true},
		{"busy", time.Second, time.Minute, false},
		{"busy for too long", time.Second, maxReconcileGap, true},
	} {
		if got := reconcileDue(now, now.Add(-tc.sinceAction), now.Add(-tc.sinceReconcile), time.Minute); got != tc.want {
			t.Errorf("%s: due %v, want %v", tc.name, got, tc.want)
		}
	}
}
