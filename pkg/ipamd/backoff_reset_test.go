package ipamd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestOldCreateFailuresDoNotLengthenANewPause: a streak of denied
// CreateNetworkInterface calls ends without a created ENI (the pods that
// wanted it went away), so nothing clears the create backoff's count.
// Long after, a single transient failure of the next create must pause it
// as a first failure does, not as the streak's next one: the ADDs waiting
// for that ENI get it within their deadline.
func TestOldCreateFailuresDoNotLengthenANewPause(t *testing.T) {
	times := fastTimes
	times.FailureBackoff = 50 * time.Millisecond
	h := newHarness(t, harnessOpts{instanceType: "m5.large", times: &times,
		scenario: func(sc *vpcsim.Scenario) { sc.DenyActions = []string{"CreateNetworkInterface"} },
		cfg:      func(c *config.Config) { c.WarmIPTarget, c.IPCooldown = 1, time.Millisecond },
	})
	runPoolManager(t, h)
	ctx := context.Background()
	add := func(id string, deadline time.Duration) error {
		actx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		_, err := h.srv.AddNetwork(actx, addReq(id))
		return err
	}
	for i := range 9 {
		if err := add(fmt.Sprint("pod-", i), 5*time.Second); err != nil {
			t.Fatalf("ADD %d: %v", i, err)
		}
	}
	// The streak: the pool wants an ENI (WARM_IP_TARGET=1, none left)
	// and EC2 refuses it over and over, doubling the pause each time.
	waitFor(t, 10*time.Second, "a streak of denied creates", func() bool {
		return h.calls()["CreateNetworkInterface"] >= 6
	})
	// A pod goes: one address is warm again and no ENI is wanted.
	if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "pod-0", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	// Long after (beyond 64 × FailureBackoff, the longest pause), EC2
	// fails one create and then accepts them again.
	c := h.n.cards.of(0)
	waitFor(t, 10*time.Second, "the streak's last pause over for longer than the longest pause", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return time.Since(c.backoffs[failCreateENI].retryAt) > times.FailureBackoff<<streakGap+100*time.Millisecond
	})
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "CreateNetworkInterface", Code: "UnauthorizedOperation", Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	before := h.calls()["CreateNetworkInterface"]
	if err := add("new-0", 5*time.Second); err != nil {
		t.Fatalf("ADD taking the warm address: %v", err)
	}
	start := time.Now()
	if err := add("new-1", 2*time.Second); err != nil {
		t.Fatalf("ADD waiting for an ENI after one transient create failure: %v (after %s; %d creates)", err,
			time.Since(start).Round(time.Millisecond), h.calls()["CreateNetworkInterface"]-before)
	}
	t.Logf("served after %s, %d creates", time.Since(start).Round(time.Millisecond), h.calls()["CreateNetworkInterface"]-before)
}
