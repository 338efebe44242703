package ipamd

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestADDsDuringASmallAttachNeedNoMoreENIs: under WARM_IP_TARGET the
// planned ENI asks EC2 for only a few addresses, but once attached it holds
// a whole ENI's worth (the next plan assigns there). On an m5.xlarge (4 ENIs
// × 14) whose primary is full, 13 ADDs arriving while that ENI attaches fit
// in it: no further ENI is attached for them (surplus ENIs are kept here by
// a 5 s minimum ENI age, so what was attached is still visible). Once the
// pods are gone the pool goes back to its one warm address.
func TestADDsDuringASmallAttachNeedNoMoreENIs(t *testing.T) {
	times := fastTimes
	times.Pool = 100 * time.Millisecond
	times.MinENIAge = 5 * time.Second
	h := newHarness(t, harnessOpts{instanceType: "m5.xlarge", times: &times, cfg: func(c *config.Config) {
		c.WarmIPTarget, c.WarmENITarget, c.IPCooldown = 1, 0, 0
	}})
	h.settle()
	runPoolManager(t, h)
	h.addPods("primary-", 13)
	waitFor(t, 10*time.Second, "the primary full", func() bool { return h.simCounts().IPs == 14 })
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{
		"AttachNetworkInterface": vpcsim.Duration(2 * time.Second),
	}}); err != nil {
		t.Fatal(err)
	}
	before := h.calls()
	created := func() int64 { return callDelta(before, h.calls())["CreateNetworkInterface"] }
	first, second := make(chan []error, 1), make(chan []error, 1)
	go func() { first <- burst(h, "first-", 1, 20*time.Second) }()
	waitFor(t, 10*time.Second, "the first ENI's create", func() bool { return created() >= 1 })
	go func() { second <- burst(h, "second-", 13, 20*time.Second) }()
	for i, err := range append(<-first, <-second...) {
		if err != nil {
			t.Errorf("ADD %d: %v", i, err)
		}
	}
	if got := h.simCounts(); got.ENIs != 2 {
		t.Errorf("EC2 holds %+v: %d ENIs for 28 pods that 2 ENIs × 14 hold", got, got.ENIs)
	}
	awaitWired(t, h)
	h.checkConsistent()

	// Demand gone: the surplus goes back to WARM_IP_TARGET=1 (one
	// address; the new ENI, empty, is freed once old enough).
	for _, id := range []string{"first-0"} {
		if _, err := h.srv.DelNetwork(context.Background(), &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: id, IfName: "eth0"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 13 {
		for _, id := range []string{fmt.Sprint("primary-", i), fmt.Sprint("second-", i)} {
			if _, err := h.srv.DelNetwork(context.Background(), &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: id, IfName: "eth0"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, 10*time.Second, "the surplus released", func() bool {
		return h.simCounts() == (simCounts{1, 1, 0}) && len(h.unattachedENIs()) == 0
	})
	h.checkConsistent()
}

// TestBurstLimitsUnderConcurrency: on small instance types, ADDs far
// beyond the node's capacity arrive in two waves, the second while the
// first's EC2 calls are in flight (so ENIs are attached beside an assign
// or another attach). Whatever the mode, EC2 never holds more ENIs than
// the instance allows (less the trunk's reserved slot) nor more addresses
// than max pods round up to (an ENI's or a prefix's worth), the primary
// gets nothing under custom networking, every ADD within capacity
// succeeds, and those beyond it fail fast naming the limit.
func TestBurstLimitsUnderConcurrency(t *testing.T) {
	for _, tc := range []struct {
		name     string
		typ      string
		cfg      func(*config.Config)
		kube     *fakeKube
		pods     int
		maxENIs  int    // ENIs EC2 may hold at most
		capacity int    // pods the node serves
		maxAddrs int    // secondary addresses (or prefixes × 16) EC2 may hold at most
		limit    string // in the message of each ADD beyond capacity
		oneWave  bool   // all ADDs at once, planned as one demand
	}{
		{name: "secondary", typ: "t3.medium", pods: 30, maxENIs: 3, capacity: 15, maxAddrs: 15,
			limit: "t3.medium card 0 takes 3 ENIs × 5 secondary IPv4 addresses"},
		{name: "MAX_ENI", typ: "m5.xlarge", cfg: func(c *config.Config) { c.MaxENI = 2 }, pods: 50, maxENIs: 2, capacity: 28,
			maxAddrs: 28, limit: "m5.xlarge card 0 takes 2 ENIs × 14 secondary IPv4 addresses (MAX_ENI=2)"},
		{name: "trunk reserved", typ: "m5.large", cfg: func(c *config.Config) { c.EnablePodENI = true },
			pods: 40, maxENIs: 2, capacity: 18, maxAddrs: 18, limit: "one ENI slot reserved for the trunk ENI"},
		{name: "custom networking", typ: "t3.medium", cfg: func(c *config.Config) { c.CustomNetworking = true },
			kube: &fakeKube{schedulable: true, maxPods: 110, eniConfig: ENIConfig{Name: "pods-a", Subnet: simtest.CustomSubnetAID,
				SecurityGroups: []string{simtest.SecurityGroup2ID}}},
			pods: 30, maxENIs: 3, capacity: 10, maxAddrs: 10, limit: "t3.medium card 0 takes 3 ENIs × 5"},
		{name: "custom networking, trunk reserved", typ: "m5.large", cfg: func(c *config.Config) { c.CustomNetworking, c.EnablePodENI = true, true },
			kube: &fakeKube{schedulable: true, maxPods: 110, eniConfig: ENIConfig{Name: "pods-a", Subnet: simtest.CustomSubnetAID,
				SecurityGroups: []string{simtest.SecurityGroup2ID}}},
			pods: 30, maxENIs: 2, capacity: 9, maxAddrs: 9, limit: "one ENI slot reserved for the trunk ENI", oneWave: true},
		{name: "max pods", typ: "m5.large", cfg: func(c *config.Config) { c.MaxPodsOverride = 12 },
			pods: 40, maxENIs: 2, capacity: 12, maxAddrs: 18, limit: "the node's max pods (12)"},
		{name: "prefix delegation, max pods", typ: "t3.medium", cfg: func(c *config.Config) {
			c.EnablePrefixDelegation, c.WarmPrefixTarget, c.MaxPodsOverride = true, 1, 20
		}, pods: 40, maxENIs: 1, capacity: 20, maxAddrs: 32, limit: "the node's max pods (20)"},
		{name: "prefix delegation, custom networking", typ: "t3.medium", cfg: func(c *config.Config) {
			c.EnablePrefixDelegation, c.WarmPrefixTarget, c.CustomNetworking = true, 1, true
		}, kube: &fakeKube{schedulable: true, maxPods: 110, eniConfig: ENIConfig{Name: "pods-a", Subnet: simtest.CustomSubnetAID,
			SecurityGroups: []string{simtest.SecurityGroup2ID}}},
			pods: 130, maxENIs: 3, capacity: 110, maxAddrs: 112, limit: "the node's max pods (110)"},
		{name: "prefix delegation, custom networking, one wave", typ: "t3.medium", cfg: func(c *config.Config) {
			c.EnablePrefixDelegation, c.WarmPrefixTarget, c.CustomNetworking = true, 1, true
		}, kube: &fakeKube{schedulable: true, maxPods: 110, eniConfig: ENIConfig{Name: "pods-a", Subnet: simtest.CustomSubnetAID,
			SecurityGroups: []string{simtest.SecurityGroup2ID}}},
			pods: 130, maxENIs: 3, capacity: 110, maxAddrs: 112, limit: "the node's max pods (110)", oneWave: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			times := fastTimes
			times.Pool = time.Hour // only demand runs the pool here
			times.AddWait = 15 * time.Second
			var kube Kubernetes
			if tc.kube != nil {
				kube = tc.kube
				tc.kube.pods = map[string]PodInfo{} // regular pods (ENABLE_POD_ENI asks)
				for _, wave := range []string{"a-", "b-"} {
					for i := range tc.pods {
						tc.kube.pods[fmt.Sprint("default/", wave, i)] = PodInfo{Found: true}
					}
				}
			}
			h := newHarness(t, harnessOpts{instanceType: tc.typ, times: &times, kube: kube, cfg: func(c *config.Config) {
				c.IPCooldown = 0
				if tc.cfg != nil {
					tc.cfg(c)
				}
			}})
			h.settle()
			d := vpcsim.Duration(300 * time.Millisecond)
			if err := h.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{
				"CreateNetworkInterface": d, "AttachNetworkInterface": d, "AssignPrivateIpAddresses": d,
			}}); err != nil {
				t.Fatal(err)
			}
			runPoolManager(t, h)
			before := h.calls()
			start := time.Now()
			first, second := make(chan []error, 1), make(chan []error, 1)
			if tc.oneWave {
				first <- nil
				go func() { second <- burst(h, "b-", tc.pods, 20*time.Second) }()
			} else {
				go func() { first <- burst(h, "a-", 5, 20*time.Second) }()
				waitFor(t, 10*time.Second, "the first wave's EC2 call", func() bool {
					c := callDelta(before, h.calls())
					return c["CreateNetworkInterface"]+c["AssignPrivateIpAddresses"] > 0
				})
				go func() { second <- burst(h, "b-", tc.pods-5, 20*time.Second) }()
			}
			errs := append(<-first, <-second...)
			took := time.Since(start)
			served := 0
			for i, err := range errs {
				if err == nil {
					served++
					continue
				}
				if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), tc.limit) {
					t.Errorf("ADD %d: %v, want ResourceExhausted naming %q", i, err, tc.limit)
				}
			}
			t.Logf("%d ADDs: %d served in %s; EC2 holds %+v", tc.pods, served, took.Round(time.Millisecond), h.simCounts())
			// Max pods caps growth, not the handout (kubelet enforces it,
			// as with upstream): the addresses held may serve a few more.
			if served < tc.capacity || served > tc.maxAddrs {
				t.Errorf("%d ADDs served, want the node's capacity %d (at most the %d addresses allowed)", served, tc.capacity, tc.maxAddrs)
			}
			if took > 10*time.Second {
				t.Errorf("the burst took %s: ADDs beyond capacity waited instead of failing fast", took)
			}
			got := h.simCounts()
			if got.ENIs > tc.maxENIs || got.IPs+16*got.Prefixes > tc.maxAddrs {
				t.Errorf("EC2 holds %+v, beyond %d ENIs and %d addresses", got, tc.maxENIs, tc.maxAddrs)
			}
			inst, err := h.env.Sim.Instance(simtest.InstanceID)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range inst.ENIs {
				if e.Attachment != nil && e.Attachment.DeviceIndex == 0 && h.cfg.CustomNetworking && len(e.SecondaryIPs)+len(e.Prefixes) > 0 {
					t.Errorf("custom networking: the primary ENI holds %d addresses and %d prefixes", len(e.SecondaryIPs), len(e.Prefixes))
				}
			}
			for _, action := range []string{"AttachNetworkInterface", "AssignPrivateIpAddresses", "AssignIpv6Addresses"} {
				if errs := h.env.Sim.Stats().Errors[action]; len(errs) != 0 {
					t.Errorf("%s refused: %v", action, errs)
				}
			}
			awaitWired(t, h)
			h.checkConsistent()
		})
	}
}

// awaitWired waits until every ENI attached in EC2 is in the datastore:
// with the pool manager running, a warm refill may still be wiring an ENI
// EC2 has attached (the window checkConsistent must not fall into).
func awaitWired(t *testing.T, h *harness) {
	t.Helper()
	waitFor(t, 10*time.Second, "attached ENIs wired", func() bool {
		inst, err := h.env.Sim.Instance(simtest.InstanceID)
		if err != nil {
			t.Fatal(err)
		}
		snap := h.n.Snapshot()
		for _, e := range inst.ENIs {
			if _, ok := h.eni(0, e.ID); !ok && !slices.Contains(snap.Cards[0].Unmanaged, e.ID) {
				return false
			}
		}
		return true
	})
}
