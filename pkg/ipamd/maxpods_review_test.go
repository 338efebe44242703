package ipamd

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
	waitFor(t, cooldown+20*time.Second, "EC2 to hold 10 addresses on 2 ENIs, as a node that never churned, once the cooldowns end", func() bool {
		return h.pool(0).Stats.CoolingIPs == 0 && h.simCounts() == (simCounts{ENIs: 2, IPs: 10})
	})
	h.checkConsistent()
}

// TestMaxPodsFailsFastUnlessRoom: an m5.large with max pods 9 and 9 pods.
// An ADD beyond max pods with nothing cooling fails within a second naming
// max pods; after a DEL (its address cooling for 30 s) the next ADD gets a
// new address at once, never the cooling one; with max pods held again
// and that address still cooling, one more ADD fails fast as well.
func TestMaxPodsFailsFastUnlessRoom(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "m5.large", cfg: func(c *config.Config) {
		c.MaxPodsOverride, c.IPCooldown = 9, 30*time.Second
	}})
	h.settle()
	stop := startPoolManager(h)
	defer stop()
	ctx := context.Background()
	h.addPods("full-", 9)
	tooMany := func(id string, cooling int) {
		t.Helper()
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		start := time.Now()
		_, err := h.srv.AddNetwork(actx, addReq(id))
		if took := time.Since(start); status.Code(err) != codes.ResourceExhausted || took > time.Second {
			t.Fatalf("ADD %s beyond max pods = %v after %s, want ResourceExhausted within 1 s", id, err, took)
		}
		for _, want := range []string{"max pods (9)", fmt.Sprintf("(%d more cooling)", cooling)} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %q", err, want)
			}
		}
	}
	tooMany("one-too-many", 0)
	d, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "full-0", IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second) // far before the cooldown ends
	defer cancel()
	r, err := h.srv.AddNetwork(actx, addReq("replacement"))
	if err != nil {
		t.Fatalf("ADD after a DEL at max pods (%+v): %v", h.pool(0).Stats, err)
	}
	if a := r.IpAllocationMetadata[0].Ipv4Addr; a == d.IpAllocationMetadata[0].Ipv4Addr {
		t.Fatalf("the replacement pod got %s, still cooling", a)
	}
	tooMany("again-too-many", 1)
	if st := h.pool(0).Stats; st.TotalIPs-st.CoolingIPs != 9 || st.CoolingIPs != 1 {
		t.Errorf("pool %+v, want 9 addresses held for pods and 1 cooling", st)
	}
	h.checkConsistent()
}

// TestMaxPodsLimitRacingADEL: a pool cycle finds the card at max pods and
// records it while a DEL lands between its view and the record (the DEL's
// address now cooling, so there is room). The next ADD must wait for the
// growth and get an address, not fail on the stale limit: the record
// re-checked max pods only when it still held at the time of recording.
func TestMaxPodsLimitRacingADEL(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "m5.large", cfg: func(c *config.Config) {
		c.MaxPodsOverride, c.IPCooldown = 9, 30*time.Second
	}})
	h.settle()
	ctx := context.Background()
	h.addPods("full-", 9)
	h.n.PoolCycle(ctx)
	c, _ := h.n.cards.first()
	view, p := c.view(), c.params(true, false, false)
	if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "full-0", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	c.setFull(c.limitText(view, p)) // the cycle's end, after the DEL
	stop := startPoolManager(h)
	defer stop()
	actx, cancel := context.WithTimeout(ctx, 5*time.Second) // far before the cooldown ends
	defer cancel()
	if _, err := h.srv.AddNetwork(actx, addReq("replacement")); err != nil {
		t.Fatalf("ADD with room under max pods (%+v): %v", h.pool(0).Stats, err)
	}
	h.checkConsistent()
}
