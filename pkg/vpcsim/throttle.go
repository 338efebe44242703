package vpcsim

import (
	"strings"
	"sync"
	"time"
)

// EC2's documented per-account, per-region request buckets (size, refill/s).
var defaultBuckets = map[string]Bucket{
	"describe":           {Size: 100, Refill: 20},
	"describeUnfiltered": {Size: 50, Refill: 10},
	"mutating":           {Size: 50, Refill: 5},
	"eniCreateDelete":    {Size: 100, Refill: 5},
	"ipAssign":           {Size: 100, Refill: 5},
	"createTags":         {Size: 100, Refill: 10},
	"runInstances":       {Size: 5, Refill: 2},
}

// throttleClass maps an action (and whether the request was filtered or
// paginated) to its bucket class.
func throttleClass(action string, filtered bool) string {
	switch action {
	case "CreateNetworkInterface", "DeleteNetworkInterface":
		return "eniCreateDelete"
	case "AssignPrivateIpAddresses", "UnassignPrivateIpAddresses", "AssignIpv6Addresses",
		"UnassignIpv6Addresses", "ModifyNetworkInterfaceAttribute":
		return "ipAssign"
	case "CreateTags":
		return "createTags"
	case "RunInstances":
		return "runInstances"
	}
	if strings.HasPrefix(action, "Describe") {
		if !filtered {
			switch action {
			case "DescribeInstances", "DescribeNetworkInterfaces", "DescribeSecurityGroups",
				"DescribeSubnets", "DescribeVpcs":
				return "describeUnfiltered"
			}
		}
		return "describe"
	}
	return "mutating"
}

// limiter holds the token buckets, refilled lazily from the injected clock.
type limiter struct {
	mu      sync.Mutex
	now     func() time.Time
	enabled bool
	conf    map[string]Bucket
	tokens  map[string]float64
	last    map[string]time.Time
}

func newLimiter(now func() time.Time) *limiter {
	return &limiter{now: now}
}

func (l *limiter) set(t Throttle) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.enabled = t.Enabled
	l.conf = map[string]Bucket{}
	for k, b := range defaultBuckets {
		l.conf[k] = b
	}
	for k, b := range t.Buckets {
		l.conf[k] = b
	}
	l.tokens = map[string]float64{}
	l.last = map[string]time.Time{}
}

// take consumes one token of class; false means RequestLimitExceeded.
func (l *limiter) take(class string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.enabled {
		return true
	}
	b := l.conf[class]
	now := l.now()
	tok, seen := l.tokens[class]
	if !seen {
		tok = b.Size
	} else if d := now.Sub(l.last[class]); d > 0 {
		tok += d.Seconds() * b.Refill
		if tok > b.Size {
			tok = b.Size
		}
	}
	l.last[class] = now
	if tok < 1 {
		l.tokens[class] = tok
		return false
	}
	l.tokens[class] = tok - 1
	return true
}
