package ipamd

import (
	"context"
	"fmt"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// goneENIHarness is an m5.large whose primary ENI is full of pods and
// whose second ENI, created for WARM_IP_TARGET=1, holds the warm address;
// the pool manager and the reconciler (periodic one an hour away) run.
func goneENIHarness(t *testing.T, backoff time.Duration) (*harness, string) {
	t.Helper()
	times := fastTimes
	times.FailureBackoff = backoff
	h := newHarness(t, harnessOpts{instanceType: "m5.large", times: &times,
		cfg: func(c *config.Config) { c.WarmIPTarget, c.IPCooldown = 1, time.Millisecond }})
	runPoolManager(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.n.reconciler.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for i := range 9 {
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := h.srv.AddNetwork(actx, addReq(fmt.Sprint("pod-", i)))
		cancel()
		if err != nil {
			t.Fatalf("ADD %d: %v", i, err)
		}
	}
	waitFor(t, 10*time.Second, "a second ENI with the warm address", func() bool {
		return h.simCounts() == simCounts{ENIs: 2, IPs: 10} && len(h.pool(0).ENIs) == 2
	})
	var second string
	for _, e := range h.pool(0).ENIs {
		if !e.IsPrimary {
			second = e.ID
		}
	}
	return h, second
}

// simAddrs is every address EC2 lists on the instance's ENIs.
func simAddrs(h *harness) map[netip.Addr]string {
	h.t.Helper()
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		h.t.Fatal(err)
	}
	out := map[netip.Addr]string{}
	for _, e := range inst.ENIs {
		for _, a := range e.SecondaryIPs {
			out[a] = e.ID
		}
	}
	return out
}

// TestAssignToAnENIDeletedBehindIpamdsBackGrowsElsewhere: the second ENI
// is detached and deleted behind ipamd's back. The next assign there
// answers NotFound; ipamd grows elsewhere at once (a new ENI) and asks for
// a reconcile, which drops the gone ENI. ADDs are served within about a
// second, with addresses EC2 lists, and the new ENI is kept though EC2
// gives it addresses the store still has on the gone one. Before, the NotFound paused assigns on
// every ENI (doubling, FailureBackoff 1 s here) and ADDs failed until the
// periodic reconcile (a minute in production).
func TestAssignToAnENIDeletedBehindIpamdsBackGrowsElsewhere(t *testing.T) {
	h, gone := goneENIHarness(t, time.Second)
	ctx := context.Background()
	enis, _, err := h.ec2.DescribeENIs(ctx, []string{gone})
	if err != nil || len(enis) != 1 || enis[0].Attachment == nil {
		t.Fatalf("describing %s: %v %+v", gone, err, enis)
	}
	if err := h.ec2.FreeENI(ctx, gone, enis[0].Attachment.ID); err != nil {
		t.Fatal(err)
	}
	before := h.calls()
	for i := range 4 {
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, 3*time.Second)
		reply, err := h.srv.AddNetwork(actx, addReq(fmt.Sprint("after-", i)))
		cancel()
		if err != nil {
			t.Fatalf("ADD after-%d with %s deleted behind ipamd's back: %v after %s", i, gone, err, time.Since(start).Round(time.Millisecond))
		}
		took := time.Since(start)
		t.Logf("ADD after-%d served in %s", i, took.Round(time.Millisecond))
		if i > 0 && took > 1500*time.Millisecond {
			t.Errorf("ADD after-%d took %s, want about a second at most", i, took.Round(time.Millisecond))
		}
		// The first ADD may take the warm address the gone ENI held
		// (nothing told ipamd yet); the later ones come from growth.
		if i > 0 {
			addr := netip.MustParseAddr(reply.IpAllocationMetadata[0].Ipv4Addr)
			if owner, ok := simAddrs(h)[addr]; !ok {
				t.Errorf("ADD after-%d got %s, which no ENI in EC2 holds", i, addr)
			} else if owner == gone {
				t.Errorf("ADD after-%d got %s of the deleted ENI", i, addr)
			}
		}
	}
	// EC2 hands the deleted ENI's addresses to the next ENI: that is no
	// reason to undo it (before, "CIDR already in data store" deleted the
	// new ENI again and paused creates).
	if d := callDelta(before, h.calls()); d["DeleteNetworkInterface"] != 0 || d["CreateNetworkInterface"] != 1 {
		t.Errorf("EC2 calls growing past the deleted ENI: %v, want one ENI created and none deleted", d)
	}
	waitFor(t, 5*time.Second, "the reconcile dropping the deleted ENI", func() bool {
		for _, e := range h.pool(0).ENIs {
			if e.ID == gone {
				return false
			}
		}
		return true
	})
	waitFor(t, 5*time.Second, "the store holding every address EC2 lists", func() bool {
		held := 0
		for _, e := range h.pool(0).ENIs {
			held += len(e.CIDRs)
		}
		return held == len(simAddrs(h))
	})
}

// TestAssignThrottleStillBacksOff: an assign EC2 throttles is no gone ENI:
// assigns on every ENI pause, doubling from FailureBackoff, and no ENI is
// created to grow elsewhere while EC2 throttles the account.
func TestAssignThrottleStillBacksOff(t *testing.T) {
	h, _ := goneENIHarness(t, 100*time.Millisecond)
	ctx := context.Background()
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "AssignPrivateIpAddresses", Code: "RequestLimitExceeded"}}}); err != nil {
		t.Fatal(err)
	}
	before := h.calls()
	start := time.Now()
	// The warm address goes to a pod: the pool wants another, on the
	// second ENI, which EC2 throttles.
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := h.srv.AddNetwork(actx, addReq("takes-warm"))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel = context.WithTimeout(ctx, 2*time.Second)
	_, err = h.srv.AddNetwork(actx, addReq("waits"))
	cancel()
	if err == nil {
		t.Fatal("ADD served while EC2 throttles every assign")
	}
	window := time.Since(start)
	d := callDelta(before, h.calls())
	t.Logf("EC2 calls over %s: %v", window.Round(time.Millisecond), d)
	if d["CreateNetworkInterface"] != 0 {
		t.Errorf("%d ENIs created while EC2 throttles assigns, want none", d["CreateNetworkInterface"])
	}
	// Pool actions: pauses of 100 ms, 200 ms… fit 2+log2(window/100ms+1)
	// in the window; awsutils tries each call up to 3 times.
	bound := 3 * (2 + int(math.Log2(float64(window)/float64(100*time.Millisecond)+1)))
	if got := d["AssignPrivateIpAddresses"]; got == 0 || got > int64(bound) {
		t.Errorf("%d throttled AssignPrivateIpAddresses calls in %s, want 1 to %d (a doubling backoff)", got, window.Round(time.Millisecond), bound)
	}
}
