package ipamd

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// hostRetryMax caps the pause between two attempts of programAtStart.
const hostRetryMax = 30 * time.Second

// programAtStart programs the host as Init needs it, trying again while
// the failure is another process holding the xtables lock past
// networkutils' patience: kube-proxy or a user's iptables can hold it
// that long, and exiting for it only restarts ipamd into the same wait
// with a growing CrashLoopBackOff. Any other failure (a bad
// configuration, no primary link) cannot heal by waiting and is returned
// at once.
func (h *hostSync) programAtStart(ctx context.Context) error {
	pause := h.retry
	for attempt := 1; ; attempt++ {
		err := h.program(ctx)
		if err == nil || !xtablesLockHeld(ctx, err) {
			return err
		}
		h.log.Warn("host networking: another process held the xtables lock too long; trying again",
			"attempt", attempt, "retryIn", pause, "err", err)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (stopped while waiting for the xtables lock: %w)", err, ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, hostRetryMax)
	}
}

// xtablesLockHeld reports whether err is ReconcileHost giving up on the
// xtables lock: its only bounded wait is for that lock (networkutils'
// patience per reconcile), so a deadline in err while ctx itself is still
// live is that wait running out.
func xtablesLockHeld(ctx context.Context, err error) bool {
	return ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded)
}
