package ipamd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// waitUntil polls cond until it holds or 10 s pass.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestADDsDuringASmallAttachNeedNoMoreENIs: under WARM_IP_TARGET the
// planned ENI asks EC2 for only a few addresses, but once attached it holds
// a whole ENI's worth (the next plan assigns there). On an m5.xlarge (4 ENIs
// × 14) whose primary is full, 13 ADDs arriving while that ENI attaches fit
// in it: no further ENI is attached for them (surplus ENIs are kept here by
// a long minimum ENI age, so what was attached is still visible).
func TestADDsDuringASmallAttachNeedNoMoreENIs(t *testing.T) {
	times := fastTimes
	times.Pool = time.Hour
	times.MinENIAge = time.Hour
	h := newHarness(t, harnessOpts{instanceType: "m5.xlarge", times: &times, cfg: func(c *config.Config) {
		c.WarmIPTarget, c.WarmENITarget, c.IPCooldown = 1, 0, 0
	}})
	h.settle()
	runPoolManager(t, h)
	for i := range 13 {
		if _, err := h.srv.AddNetwork(context.Background(), addReq(fmt.Sprint("primary-", i))); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "the primary full", func() bool { return h.simCounts().IPs == 14 })
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{
		"AttachNetworkInterface": vpcsim.Duration(2 * time.Second),
	}}); err != nil {
		t.Fatal(err)
	}
	before := h.calls()
	created := func() int64 { return callDelta(before, h.calls())["CreateNetworkInterface"] }
	first, second := make(chan []error, 1), make(chan []error, 1)
	go func() { first <- burst(h, "first-", 1, 20*time.Second) }()
	waitUntil(t, "the first ENI's create", func() bool { return created() >= 1 })
	go func() { second <- burst(h, "second-", 13, 20*time.Second) }()
	for i, err := range append(<-first, <-second...) {
		if err != nil {
			t.Errorf("ADD %d: %v", i, err)
		}
	}
	if got := h.simCounts(); got.ENIs != 2 {
		t.Errorf("EC2 holds %+v: %d ENIs for 28 pods that 2 ENIs × 14 hold", got, got.ENIs)
	}
	h.checkConsistent()
}
