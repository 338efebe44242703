package ipamd

import (
	"context"
	"log/slog"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/introspect"
)

// imdsWatch waits for instance metadata to list a new ENI: it lags EC2 by
// seconds. It owns no state.
type imdsWatch struct {
	md    Metadata
	track *introspect.Tracker
	limit time.Duration // Intervals.IMDSWait
	log   *slog.Logger
	// timed is told how long each wait took and whether it saw the ENI
	// (metrics.ObserveIMDSWait); nil: not told.
	timed func(d time.Duration, listed bool)
}

// confirm waits (bounded by limit, past the end of ctx) for
// instance metadata to list a new ENI already in use, and warns if it never
// does: EC2 attached it but the instance may not see it.
func (w *imdsWatch) confirm(ctx context.Context, eniID string) {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.limit)
	defer cancel()
	if _, ok := w.wait(wctx, eniID); !ok {
		w.log.Warn("instance metadata still does not list a new ENI that EC2 attached; serving pods from it with EC2's data",
			"eni", eniID, "waited", w.limit)
	}
}

// wait polls instance metadata until it lists eniID, at most
// limit.
func (w *imdsWatch) wait(ctx context.Context, eniID string) (_ awsutils.ENIMetadata, listed bool) {
	defer w.track.Begin(waitIMDS, "instance metadata to list new ENI "+eniID)()
	if w.timed != nil {
		defer func(start time.Time) { w.timed(time.Since(start), listed) }(time.Now())
	}
	deadline := time.Now().Add(w.limit)
	delay := 50 * time.Millisecond
	for {
		mds, err := w.md.ENIs(ctx)
		if err == nil {
			for _, m := range mds {
				if m.ENIID == eniID {
					return m, true
				}
			}
		}
		if time.Now().Add(delay).After(deadline) {
			return awsutils.ENIMetadata{}, false
		}
		select {
		case <-ctx.Done():
			return awsutils.ENIMetadata{}, false
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
}
