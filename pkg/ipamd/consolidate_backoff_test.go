package ipamd

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestConsolidateAssignBacksOff: the pool is at WARM_IP_TARGET with its
// warm addresses on an otherwise empty secondary ENI, so the planner wants
// to move them to the primary ENI (an assign) and free that ENI, and
// AssignPrivateIpAddresses is denied (IAM). Every pool cycle, which each ADD
// and DEL may start, plans that assign: the assign backoff must hold it,
// so over the window EC2 receives no more assigns than doubling pauses fit.
func TestConsolidateAssignBacksOff(t *testing.T) {
	times := fastTimes
	times.FailureBackoff = 100 * time.Millisecond
	h := newHarness(t, harnessOpts{instanceType: "m5.large", times: &times,
		scenario: func(sc *vpcsim.Scenario) {
			sc.NetworkInterfaces = append(sc.NetworkInterfaces, vpcsim.ENISpec{
				ID: "eni-000000000000003a7", Subnet: simtest.NodeSubnetID, SecurityGroups: []string{simtest.SecurityGroupID},
				SecondaryIPCount: 3, AttachTo: simtest.InstanceID, DeviceIndex: 1, DeleteOnTermination: true,
			})
			sc.DenyActions = []string{"AssignPrivateIpAddresses"}
		},
		cfg: func(c *config.Config) { c.WarmIPTarget = 3 },
	})
	if _, ok := h.eni(0, "eni-000000000000003a7"); !ok {
		t.Fatal("the attached ENI with the warm addresses was not adopted")
	}
	ctx := context.Background()
	before := h.calls()
	start := time.Now()
	cycles := 0
	for time.Since(start) < 2*time.Second {
		h.n.PoolCycle(ctx) // as the ADDs and DELs of a busy node start them
		cycles++
	}
	window := time.Since(start)
	d := callDelta(before, h.calls())
	t.Logf("%d pool cycles in %s: EC2 calls %v", cycles, window.Round(time.Millisecond), d)
	// Each attempt may cost two calls (upstream's retry with one
	// address); pauses of 100 ms, 200 ms, 400 ms… end by the window's end
	// at most 1+log2(window/100ms + 1) times, one more for the first.
	bound := 2 * (2 + int(math.Log2(float64(window)/float64(times.FailureBackoff)+1)))
	if got := d["AssignPrivateIpAddresses"]; got > int64(bound) {
		t.Errorf("%d denied AssignPrivateIpAddresses calls in %s over %d pool cycles, want at most %d (a doubling backoff)",
			got, window.Round(time.Millisecond), cycles, bound)
	}
	if got := h.simCounts(); got.ENIs != 2 || got.IPs != 3 {
		t.Errorf("EC2 holds %+v, want the 2 ENIs and the 3 warm addresses kept", got)
	}
}
