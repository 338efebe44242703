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
