package testutil

import (
	"context"
	"errors"
	"time"
)

// PollInterval is how often Eventually re-checks its condition.
const PollInterval = 200 * time.Millisecond

// Eventually polls cond every PollInterval until it returns nil or d (or
// ctx) runs out, and then returns cond's last error joined with the
// deadline's. Tests wait on conditions with it, never on fixed sleeps.
func Eventually(ctx context.Context, d time.Duration, cond func() error) error {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	for {
		err := cond()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(PollInterval):
		}
	}
}
