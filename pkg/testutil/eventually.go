package testutil

import (
	"context"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/poll"
)

// PollInterval is how often Eventually re-checks its condition.
const PollInterval = poll.Interval

// Eventually is poll.Until: tests wait on conditions with it, never on
// fixed sleeps.
func Eventually(ctx context.Context, d time.Duration, cond func() error) error {
	return poll.Until(ctx, d, cond)
}
