package ipamd

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestCreatesBesideAnAssignClearTheCreateBackoff: the node's subnet is
// tagged out of pod use, so new ENIs are refused without an EC2 call and
// their pause doubles. The tag is fixed; the next ENI is created beside
// an assign under way (ADDs arriving while it runs). That created ENI
// ends the streak: a later single transient create failure pauses as a
// first failure does, and the ADD waiting for that ENI is served within
// its deadline. Before, only a planned CreateENI ended the streak, so the
// pause after that one failure was FailureBackoff << streak (3.2 s here).
func TestCreatesBesideAnAssignClearTheCreateBackoff(t *testing.T) {
	times := fastTimes
	times.FailureBackoff = 100 * time.Millisecond
	times.SubnetCache = 50 * time.Millisecond
	h := newHarness(t, harnessOpts{instanceType: "m5.large", times: &times,
		scenario: func(sc *vpcsim.Scenario) { sc.VPCs[0].Subnets[0].Tags[awsutils.TagSubnetRoleCNI] = "0" },
		cfg: func(c *config.Config) {
			c.EnableSubnetDiscovery = false
			c.WarmIPTarget, c.IPCooldown = 1, time.Millisecond
		},
	})
	runPoolManager(t, h)
	ctx := context.Background()
	add := func(id string, deadline time.Duration) error {
		actx, cancel := context.WithTimeout(ctx, deadline)
		defer cancel()
		_, err := h.srv.AddNetwork(actx, addReq(id))
		return err
	}
	del := func(id string) {
		t.Helper()
		if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: id, IfName: "eth0"}); err != nil {
			t.Fatal(err)
		}
	}
	// m5.large: the primary ENI holds 9 pods; with 9 the pool wants a
	// warm address more, so an ENI, refused again and again.
	for i := range 9 {
		if err := add(fmt.Sprint("pod-", i), 5*time.Second); err != nil {
			t.Fatalf("ADD %d: %v", i, err)
		}
	}
	c := h.n.cards.of(0)
	createBackoff := func() kindBackoff {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.backoffs[failCreateENI]
	}
	waitFor(t, 10*time.Second, "a streak of refused ENIs", func() bool { return createBackoff().failures >= 5 })
	// The demand goes (3 pods leave) and the subnet is tagged for pods.
	for i := range 3 {
		del(fmt.Sprint("pod-", i))
	}
	if err := h.ec2.CreateTags(ctx, h.n.node.subnetID, map[string]string{awsutils.TagSubnetRoleCNI: "1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the surplus released", func() bool { return h.simCounts().IPs == 7 })
	waitFor(t, 10*time.Second, "the streak's pause over", func() bool { return time.Now().After(createBackoff().retryAt) })
	streak := createBackoff().failures

	// A slow assign of the warm address the next ADD takes; ADDs arriving
	// meanwhile are more than the primary holds: an ENI attaches beside.
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{
		"AssignPrivateIpAddresses": vpcsim.Duration(time.Second),
		// Long enough to be seen under way beside the assign below.
		"CreateNetworkInterface": vpcsim.Duration(300 * time.Millisecond)}}); err != nil {
		t.Fatal(err)
	}
	if err := add("burst-0", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the assign under way", func() bool {
		for _, a := range h.n.track.Current() {
			if strings.Contains(a.What, "AssignPrivateIpAddresses") {
				return true
			}
		}
		return false
	})
	// The ENI must be made beside the assign (the path under test), not
	// by a planned create after it, which ended the streak before the fix
	// too: watch for both calls under way at once.
	beside := make(chan bool, 1)
	wctx, stop := context.WithCancel(ctx)
	go func() {
		seen := false
		for !seen && wctx.Err() == nil {
			var assign, create bool
			for _, a := range h.n.track.Current() {
				assign = assign || strings.Contains(a.What, "AssignPrivateIpAddresses")
				create = create || strings.Contains(a.What, "CreateNetworkInterface")
			}
			seen = assign && create
			time.Sleep(time.Millisecond) // a poll: the tracker has no change notification
		}
		beside <- seen
	}()
	for i, err := range burst(h, "burst-more-", 6, 10*time.Second) {
		if err != nil {
			stop()
			t.Fatalf("ADD %d of the burst: %v", i, err)
		}
	}
	stop()
	if !<-beside {
		t.Fatal("the ENI was not created while the assign was under way: this run does not test an ENI made beside an assign")
	}
	if got := h.simCounts(); got.ENIs != 2 {
		t.Fatalf("EC2 holds %+v after the burst, want 2 ENIs", got)
	}
	t.Logf("streak of %d refused ENIs before the ENI beside the assign", streak)

	// One transient failure of the next ENI: ADDs past the two ENIs wait
	// for it no longer than a first failure's pause.
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "CreateNetworkInterface", Code: "UnauthorizedOperation", Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		start := time.Now()
		if err := add(fmt.Sprint("next-", i), 2*time.Second); err != nil {
			t.Fatalf("ADD next-%d (pods past two ENIs wait for a third after one transient create failure): %v after %s",
				i, err, time.Since(start).Round(time.Millisecond))
		}
	}
	if got := h.simCounts(); got.ENIs != 3 {
		t.Fatalf("EC2 holds %+v, want 3 ENIs", got)
	}
}
