package ipamd

import (
	"errors"
	"fmt"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/pool"
)

// failKind is what a failed pool action was doing. Each kind backs off on
// its own: a failure that keeps happening beside successes of another kind
// (CreateNetworkInterface denied while assigns on the existing ENIs work)
// must not be retried after each success, or ipamd calls EC2 with it about
// once a second forever and EC2 throttles the whole account.
type failKind int

const (
	failCreateENI failKind = iota
	failAssign
	failRelease
	failFreeENI
	failIPv6Prefix
	// failDeleteOnTermination: setting delete-on-termination again on
	// the node's ENIs (poolCycler; kept by card 0).
	failDeleteOnTermination
	numFailKinds
)

func (k failKind) String() string {
	return [...]string{"creating an ENI", "assigning addresses", "releasing addresses", "freeing an ENI",
		"giving an ENI its IPv6 prefix", "setting delete-on-termination"}[k]
}

// kindOf is the failure kind of a planned action.
func kindOf(k pool.Kind) failKind {
	switch k {
	case pool.CreateENI:
		return failCreateENI
	case pool.ReleaseCIDRs:
		return failRelease
	case pool.FreeENI:
		return failFreeENI
	}
	return failAssign
}

// grownErr marks the failure of ENIs an assign attached beside itself for
// ADDs that arrived meanwhile (assignGrowing): a create failure, not the
// assign's.
type grownErr struct{ err error }

func (e grownErr) Error() string { return e.err.Error() }
func (e grownErr) Unwrap() error { return e.err }

// outcomes splits an action's result into the kinds that failed (with
// their error) and those that succeeded: an assign's result may carry the
// failure of the ENIs attached beside it, or (grew) their success, which
// ends the create streak as a planned create's does. Otherwise a streak
// of creates refused without an EC2 call (no ENIConfig, subnets tagged
// out) outlives its fix, and the next create failure pauses for long.
func outcomes(a pool.Action, grew bool, err error) (failed map[failKind]error, succeeded []failKind) {
	failed = map[failKind]error{}
	if grew {
		succeeded = append(succeeded, failCreateENI)
	}
	own := kindOf(a.Kind)
	if a.Kind == pool.AssignIPs {
		var rest []error
		parts := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			parts = j.Unwrap()
		}
		for _, e := range parts {
			if g, ok := errors.AsType[grownErr](e); ok {
				failed[failCreateENI] = g.err
				continue
			}
			rest = append(rest, e)
		}
		err = errors.Join(rest...)
	}
	if err != nil {
		failed[own] = err
	} else {
		succeeded = append(succeeded, own)
	}
	return failed, succeeded
}

// streakGap: a kind not tried for FailureBackoff<<streakGap (64 s at the
// default 1 s, past the minute cap) after its pause ended starts a new
// streak of failures. A failure that persists is retried within a pool
// tick of the pause's end, so its pause keeps doubling.
const streakGap = 6

// kindBackoff is one kind's pause after consecutive failures.
type kindBackoff struct {
	failures int       // consecutive failures of the kind
	retryAt  time.Time // no action of the kind before this time
	err      error     // the last failure
	wait     timedWait // shown in /v1/pool
}

// pausedFor says why actions of kind k wait ("" when they may run now).
func (c *poolManager) pausedFor(k failKind, now time.Time) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := &c.backoffs[k]
	if !now.Before(b.retryAt) || b.err == nil {
		return ""
	}
	return fmt.Sprintf("%s failed (%s); retrying after %s", k, causeOf(b.err), b.retryAt.Format(time.RFC3339Nano))
}
