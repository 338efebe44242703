package awsutils

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/time/rate"
)

// LimitClass names one of EC2's documented request token buckets
// (account-wide, per region). See DefaultBuckets for the sizes.
type LimitClass string

// The bucket classes of EC2's request throttling that ipamd's calls fall in.
const (
	// LimitDescribe: filtered or paginated Describe* (one shared bucket).
	LimitDescribe LimitClass = "describe"
	// LimitDescribeUnfiltered: Describe* with no ids, filters or pagination.
	LimitDescribeUnfiltered LimitClass = "describe-unfiltered"
	// LimitMutating: mutating actions without a bucket of their own, such
	// as AttachNetworkInterface and DetachNetworkInterface (one shared bucket).
	LimitMutating LimitClass = "mutating"
	// LimitENI: CreateNetworkInterface and DeleteNetworkInterface.
	LimitENI LimitClass = "eni"
	// LimitAddresses: Assign/UnassignPrivateIpAddresses,
	// Assign/UnassignIpv6Addresses and ModifyNetworkInterfaceAttribute.
	LimitAddresses LimitClass = "addresses"
	// LimitTags: CreateTags.
	LimitTags LimitClass = "tags"
)

// Bucket is a token bucket: Size tokens, refilled at RefillPerSecond.
type Bucket struct {
	Size            int
	RefillPerSecond float64
}

// RateLimits configures the client-side limiter. Every EC2 attempt
// (retries included) waits for a token of its action's bucket.
type RateLimits struct {
	// Disabled turns the client-side limiter off.
	Disabled bool
	// Buckets per class; a class missing here is not limited.
	Buckets map[LimitClass]Bucket
}

// DefaultBuckets returns EC2's documented default bucket sizes and refill
// rates, which the account shares with every node.
func DefaultBuckets() map[LimitClass]Bucket {
	return map[LimitClass]Bucket{
		LimitDescribe:           {Size: 100, RefillPerSecond: 20},
		LimitDescribeUnfiltered: {Size: 50, RefillPerSecond: 10},
		LimitMutating:           {Size: 50, RefillPerSecond: 5},
		LimitENI:                {Size: 100, RefillPerSecond: 5},
		LimitAddresses:          {Size: 100, RefillPerSecond: 5},
		LimitTags:               {Size: 100, RefillPerSecond: 10},
	}
}

// classify maps an EC2 action to its bucket class; the actions of a class
// share one bucket.
func classify(action string, unfiltered bool) LimitClass {
	switch action {
	case "CreateNetworkInterface", "DeleteNetworkInterface":
		return LimitENI
	case "AssignPrivateIpAddresses", "UnassignPrivateIpAddresses",
		"AssignIpv6Addresses", "UnassignIpv6Addresses", "ModifyNetworkInterfaceAttribute":
		return LimitAddresses
	case "CreateTags":
		return LimitTags
	}
	if strings.HasPrefix(action, "Describe") {
		if unfiltered {
			return LimitDescribeUnfiltered
		}
		return LimitDescribe
	}
	return LimitMutating
}

// limiter holds one rate.Limiter per class, created on first use.
type limiter struct {
	cfg RateLimits

	mu      sync.Mutex
	buckets map[LimitClass]*rate.Limiter
}

func newLimiter(cfg RateLimits) *limiter {
	return &limiter{cfg: cfg, buckets: map[LimitClass]*rate.Limiter{}}
}

// wait blocks until the action's bucket has a token or ctx ends.
func (l *limiter) wait(ctx context.Context, action string, unfiltered bool) error {
	if l == nil || l.cfg.Disabled {
		return nil
	}
	class := classify(action, unfiltered)
	b, ok := l.cfg.Buckets[class]
	if !ok {
		return nil
	}
	l.mu.Lock()
	lim := l.buckets[class]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(b.RefillPerSecond), b.Size)
		l.buckets[class] = lim
	}
	l.mu.Unlock()
	if err := lim.Wait(ctx); err != nil {
		return fmt.Errorf("client-side rate limit for %s (bucket %s): %w", action, class, err)
	}
	return nil
}
