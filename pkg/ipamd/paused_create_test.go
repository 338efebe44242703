package ipamd

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestPausedCreateADDNamesCauseAndResumes: the primary ENI is full and
// CreateNetworkInterface is denied (IAM), so creating an ENI backs off. An
// ADD meanwhile fails at its deadline naming the cause; once EC2 accepts
// the create again, a waiting ADD gets an address on the new ENI within
// its deadline (the pause ends and the next cycle creates the ENI).
func TestPausedCreateADDNamesCauseAndResumes(t *testing.T) {
	times := fastTimes
	times.FailureBackoff = 100 * time.Millisecond
	h := newHarness(t, harnessOpts{instanceType: "m5.large", times: &times,
		scenario: func(sc *vpcsim.Scenario) { sc.DenyActions = []string{"CreateNetworkInterface"} },
		cfg:      func(c *config.Config) { c.WarmIPTarget = 1 },
	})
	runPoolManager(t, h)
	ctx := context.Background()
	for i := range 9 {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := h.srv.AddNetwork(actx, addReq(fmt.Sprint("pod-", i)))
		cancel()
		if err != nil {
			t.Fatalf("ADD %d: %v", i, err)
		}
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := h.srv.AddNetwork(actx, addReq("tenth"))
	cancel()
	if err == nil || !strings.Contains(err.Error(), "UnauthorizedOperation") {
		t.Fatalf("ADD with every ENI full and the create denied = %v, want a failure naming UnauthorizedOperation", err)
	}
	if err := h.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	actx, cancel = context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := h.srv.AddNetwork(actx, addReq("after-the-fix")); err != nil {
		t.Fatalf("ADD after EC2 accepts the create again: %v", err)
	}
	if got := h.simCounts().ENIs; got != 2 {
		t.Errorf("%d ENIs, want the new one", got)
	}
}
