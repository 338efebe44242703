// Package poll waits on conditions: the one loop tests and the demo use
// instead of fixed sleeps.
package poll

import (
	"context"
	"errors"
	"time"
)

// Interval is how often Until re-checks its condition.
const Interval = 200 * time.Millisecond

// Until polls cond every Interval until it returns nil or d (or ctx) runs
// out, and then returns cond's last error joined with the deadline's.
func Until(ctx context.Context, d time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	t := time.NewTicker(Interval)
	defer t.Stop()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}
