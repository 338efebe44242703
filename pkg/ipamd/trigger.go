package ipamd

import (
	"context"
	"time"
)

// trigger runs a function on a timer and on demand, never concurrently with
// itself, coalescing demands that arrive while it runs into one more run.
type trigger struct {
	kick chan struct{}
	// gather delays a demand-driven run this long, so that the Fire calls
	// of a burst (ADDs arriving together) are planned as one demand.
	gather time.Duration
	// fired tells a run in progress that demand came meanwhile (an ENI
	// attach for a burst sizes itself again on it).
	fired *signal
}

func newTrigger() *trigger { return &trigger{kick: make(chan struct{}, 1), fired: newSignal()} }

// demand returns the channel the next Fire closes.
func (t *trigger) demand() <-chan struct{} { return t.fired.wait() }

// Fire asks for a run as soon as possible. It never blocks.
func (t *trigger) Fire() {
	t.fired.broadcast()
	select {
	case t.kick <- struct{}{}:
	default: // a run is already due
	}
}

// Run calls f every interval and after each Fire until ctx ends. minGap
// spaces demand-driven runs (0: none), so a storm of Fire calls costs at
// most one run per minGap.
func (t *trigger) Run(ctx context.Context, interval, minGap time.Duration, f func(context.Context)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.kick:
			if wait := max(minGap-time.Since(last), t.gather); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		last = time.Now()
		f(ctx)
	}
}
