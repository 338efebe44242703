package ipamd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// startPoolManager runs the pool loop until the returned stop is called
// (a restart stops the old IPAM's loop first).
func startPoolManager(h *harness) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	n := h.n
	go func() { defer close(done); n.pool.Run(ctx, n.times.Pool, 0, n.PoolCycle) }()
	return func() { cancel(); <-done }
}

// TestSecondaryChurnAtMaxPodsShrinksBackAfterRestart: secondary-IP mode
// with WARM_ENI_TARGET=1 and max pods 10 on an m5.large. Churning 8 live
// pods grows the pool past 10 addresses in total (the DELs' addresses
// cool) while never holding more than 10 for pods; an ipamd restart from
// its checkpoint keeps that arithmetic (the cooling addresses still do
// not count, so churn goes on without waiting); once the cooldowns end
// the pool is back to what a node that never churned holds: 10 addresses
// on 2 ENIs. It kept every address churn added (19 on 3 ENIs with 8
// pods): WARM_ENI_TARGET never released single addresses.
func TestSecondaryChurnAtMaxPodsShrinksBackAfterRestart(t *testing.T) {
	const cooldown = 6 * time.Second
	h := newHarness(t, harnessOpts{instanceType: "m5.large", cfg: func(c *config.Config) {
		c.MaxPodsOverride, c.IPCooldown = 10, cooldown
	}})
	h.settle()
	stop := startPoolManager(h)
	defer func() { stop() }()
	ctx := context.Background()
	var order []string
	add := func(id string) {
		t.Helper()
		actx, cancel := context.WithTimeout(ctx, 2*time.Second) // before any cooldown ends
		defer cancel()
		if _, err := h.srv.AddNetwork(actx, addReq(id)); err != nil {
			t.Fatalf("ADD %s with %+v (EC2 holds %+v): %v", id, h.pool(0).Stats, h.simCounts(), err)
		}
		order = append(order, id)
	}
	churn := func(tag string, n int) {
		t.Helper()
		for i := range n {
			oldest := order[0]
			order = order[1:]
			if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: oldest, IfName: "eth0"}); err != nil {
				t.Fatal(err)
			}
			add(fmt.Sprint(tag, i))
			if st := h.pool(0).Stats; st.TotalIPs-st.CoolingIPs > 10 {
				t.Fatalf("%s %d: the pool holds %d addresses for pods (%+v), beyond max pods 10", tag, i, st.TotalIPs-st.CoolingIPs, st)
			}
		}
	}
	for i := range 8 {
		add(fmt.Sprint("live-", i))
	}
	start := time.Now()
	churn("churn-", 6)
	if got := h.simCounts().IPs; got <= 10 {
		t.Fatalf("EC2 holds %d secondary addresses after the churn: the pool never grew past max pods, the test proves nothing", got)
	}
	cooling := h.pool(0).Stats.CoolingIPs
	stop()
	h.connect(fastTimes) // restart from the checkpoint
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	stop = startPoolManager(h)
	if st := h.pool(0).Stats; st.CoolingIPs < cooling && time.Since(start) < cooldown {
		t.Errorf("after the restart %+v: %d were cooling before it", st, cooling)
	}
	churn("after-restart-", 3)
	if took := time.Since(start); took >= cooldown {
		t.Logf("the churn took %s, longer than the cooldown: addresses may have come back during it", took)
	}
	deadline := time.Now().Add(cooldown + 20*time.Second)
	for h.pool(0).Stats.CoolingIPs > 0 || h.simCounts() != (simCounts{ENIs: 2, IPs: 10}) {
		if time.Now().After(deadline) {
			t.Fatalf("once the cooldowns ended EC2 holds %+v (%+v), want 10 addresses on 2 ENIs as a node that never churned", h.simCounts(), h.pool(0).Stats)
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.checkConsistent()
}
