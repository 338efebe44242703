package ipamd

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// pdNode is an m5.large (3 ENIs × 9 /28 prefixes) under prefix delegation
// with WARM_PREFIX_TARGET=1 and kubelet's max pods 110, settled.
func pdNode(t *testing.T, times Intervals, cfg func(*config.Config)) *harness {
	t.Helper()
	h := newHarness(t, harnessOpts{instanceType: "m5.large", times: &times, cfg: func(c *config.Config) {
		c.EnablePrefixDelegation, c.WarmPrefixTarget, c.MaxPodsOverride = true, 1, 110
		if cfg != nil {
			cfg(c)
		}
	}})
	h.settle()
	return h
}

// TestPDChurnBeyondMaxPodsWithoutWaiting: with prefix delegation and max
// pods 20, 10 live pods churned 60 times leave 60 addresses cooling, three
// times max pods. Max pods limits pods, not cooling addresses, so each
// ADD is served by new prefixes within a deadline far shorter than the
// cooldown (ipamd stopped at 32 addresses, then every ADD waited for a
// cooldown or failed); once the cooldowns end the pool shrinks back to
// its target: the prefixes holding the live pods and one free.
func TestPDChurnBeyondMaxPodsWithoutWaiting(t *testing.T) {
	const cooldown = 10 * time.Second
	h := pdNode(t, fastTimes, func(c *config.Config) { c.MaxPodsOverride, c.IPCooldown = 20, cooldown })
	runPoolManager(t, h)
	ctx := context.Background()
	live := map[string]netip.Addr{}
	var order []string
	add := func(id string) {
		t.Helper()
		actx, cancel := context.WithTimeout(ctx, 2*time.Second) // well before any cooldown ends
		defer cancel()
		r, err := h.srv.AddNetwork(actx, addReq(id))
		if err != nil {
			t.Fatalf("ADD %s with %d addresses cooling (EC2 holds %+v): %v", id, h.pool(0).Stats.CoolingIPs, h.simCounts(), err)
		}
		live[id] = netip.MustParseAddr(r.IpAllocationMetadata[0].Ipv4Addr)
		order = append(order, id)
	}
	for i := range 10 {
		add(fmt.Sprint("live-", i))
	}
	start := time.Now()
	for i := range 60 {
		oldest := order[0]
		order = order[1:]
		if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: oldest, IfName: "eth0"}); err != nil {
			t.Fatal(err)
		}
		delete(live, oldest)
		add(fmt.Sprint("churn-", i))
	}
	if took := time.Since(start); took >= cooldown {
		t.Logf("the churn took %s, longer than the cooldown: addresses may have come back during it", took)
	}
	if held := 16 * h.simCounts().Prefixes; held <= 32 {
		t.Errorf("EC2 holds %d addresses after the churn: the pool never grew past max pods 20 in whole prefixes", held)
	}
	// Still within max pods for the addresses that can serve a pod: less
	// than a prefix beyond it.
	if st := h.pool(0).Stats; st.TotalIPs-st.CoolingIPs >= 20+16 {
		t.Errorf("after the churn the pool holds %d addresses for pods (%+v), a prefix or more beyond max pods 20", st.TotalIPs-st.CoolingIPs, st)
	}
	// After the cooldowns: the prefixes of the live pods and one free, the
	// free one only while max pods leaves room for it (the pool does not
	// grow once it holds max pods for pods, and what churn added beyond
	// that is released).
	used := map[netip.Prefix]bool{}
	for _, a := range live {
		used[netip.PrefixFrom(a, 28).Masked()] = true
	}
	want := len(used)
	if 16*len(used) < 20 {
		want++
	}
	if p := h.simCounts().Prefixes; p < want+1 {
		t.Fatalf("EC2 holds %d prefixes, the live pods use %d: nothing to shrink, the test proves nothing", p, len(used))
	}
	waitFor(t, cooldown+20*time.Second, fmt.Sprintf("the pool back at its target (%d prefixes) once the cooldowns ended", want), func() bool {
		return h.pool(0).Stats.CoolingIPs == 0 && h.simCounts().Prefixes == want
	})
	h.checkConsistent()
}

// TestPDWaitersGetOneAssign: 20 ADDs waiting at once beyond the free
// prefix of a PD node (16 pods on one prefix, one prefix free) get one
// AssignPrivateIpAddresses of 3 prefixes: 2 for them and the warm prefix
// they would use up, not an assign for them and another for the warm one.
func TestPDWaitersGetOneAssign(t *testing.T) {
	times := fastTimes
	times.Pool = time.Hour // only demand runs the pool here
	h := pdNode(t, times, nil)
	h.addPods("first-", 16)
	h.settle()
	if got := h.simCounts(); got != (simCounts{1, 0, 2}) {
		t.Fatalf("16 pods settled: EC2 holds %+v, want their prefix and a free one", got)
	}
	before := h.calls()
	errs := make(chan []error, 1)
	go func() { errs <- burst(h, "w-", 36, 15*time.Second) }()
	waitFor(t, 10*time.Second, "20 ADDs waiting", func() bool { return h.waitingADDs() >= 20 || len(errs) > 0 })
	runPoolManager(t, h)
	for i, err := range <-errs {
		if err != nil {
			t.Errorf("pod %d: %v", i, err)
		}
	}
	h.settle()
	want := calls{"AssignPrivateIpAddresses": 1}
	if diff := cmp.Diff(want, callDelta(before, h.calls())); diff != "" {
		t.Errorf("EC2 calls for 20 waiting ADDs (-want +got):\n%s", diff)
	}
	if got := h.simCounts(); got != (simCounts{1, 0, 5}) {
		t.Errorf("EC2 holds %+v, want 52 pods in 4 prefixes and one free", got)
	}
	h.checkConsistent()
}
