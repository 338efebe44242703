package ipamd

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestCreateENIBackoffSurvivesOtherSuccesses: CreateNetworkInterface
// denied (IAM) on a node whose pods churn, so releases and assigns on the
// primary ENI keep succeeding between the attempts at a new ENI. The
// create backs off on its own, doubling from FailureBackoff: over the
// window EC2 receives no more CreateNetworkInterface calls than doubling
// pauses fit in it. Before, each successful release or assign reset the
// backoff and the denied create went to EC2 after every one of them.
func TestCreateENIBackoffSurvivesOtherSuccesses(t *testing.T) {
	times := fastTimes
	times.FailureBackoff = 100 * time.Millisecond
	// m5.large: 9 secondary addresses on the primary ENI. WARM_IP_TARGET=3
	// with 7 pods wants 10: the ENI is full and the pool asks for an ENI.
	h := newHarness(t, harnessOpts{instanceType: "m5.large", times: &times, cfg: func(c *config.Config) {
		c.WarmIPTarget, c.IPCooldown = 3, time.Millisecond
	}})
	if err := h.env.Sim.SetFaults(vpcsim.Faults{DenyActions: []string{"CreateNetworkInterface"}}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	runPoolManager(t, h)
	var live []string
	add := func(id string) {
		t.Helper()
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := h.srv.AddNetwork(actx, addReq(id)); err != nil {
			t.Fatalf("ADD %s: %v", id, err)
		}
		live = append(live, id)
	}
	for i := range 7 {
		add(fmt.Sprint("pod-", i))
	}
	waitFor(t, 10*time.Second, "the primary ENI full (9 addresses) for 7 pods", func() bool { return h.simCounts().IPs == 9 })
	if got := h.simCounts(); got.ENIs != 1 {
		t.Fatalf("EC2 holds %+v: an ENI though CreateNetworkInterface is denied", got)
	}

	// Each round: two DELs leave one address over the target (a release),
	// two ADDs then leave the pool short (an assign, then an ENI wanted).
	before := h.calls()
	start := time.Now()
	rounds := 0
	for time.Since(start) < 3*time.Second {
		for range 2 {
			id := live[0]
			live = live[1:]
			if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: id, IfName: "eth0"}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 10*time.Second, "the release of the address over the target", func() bool { return h.simCounts().IPs == 8 })
		add(fmt.Sprint("churn-", rounds, "a"))
		add(fmt.Sprint("churn-", rounds, "b"))
		waitFor(t, 10*time.Second, "the assign of the address the ADDs took", func() bool { return h.simCounts().IPs == 9 })
		rounds++
	}
	window := time.Since(start)
	d := callDelta(before, h.calls())
	t.Logf("%d rounds in %s: EC2 calls %v", rounds, window.Round(time.Millisecond), d)
	if d["UnassignPrivateIpAddresses"] < 10 || d["AssignPrivateIpAddresses"] < 10 {
		t.Fatalf("only %d rounds in %s (calls %v): too few successes beside the failing create to prove anything", rounds, window, d)
	}
	// Pauses of 100 ms, 200 ms, 400 ms… end by the window's end at most
	// 1+log2(window/100ms + 1) times; one more for the attempt the pause
	// before the window let through.
	bound := 2 + int(math.Log2(float64(window)/float64(times.FailureBackoff)+1))
	if got := d["CreateNetworkInterface"]; got > int64(bound) || got == 0 {
		t.Errorf("%d denied CreateNetworkInterface calls in %s beside %d successful releases and %d assigns, want 1 to %d (a doubling backoff)",
			got, window.Round(time.Millisecond), d["UnassignPrivateIpAddresses"], d["AssignPrivateIpAddresses"], bound)
	}
	// The cycle that carried out the round's last assign clears the card's
	// reason until the next cycle finds the ENI still wanted: wait for it.
	waitFor(t, 5*time.Second, "the card to say why it cannot grow", func() bool {
		s, _ := h.state(0)
		return s != ""
	})
}
