package ipamd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestStartupCalls pins what a fresh node's start costs in EC2 calls with
// WARM_ENI_TARGET=1: the instance type's limits, one describe of the
// attached ENIs (it also names the subnet, VPC, primary ENI and its groups:
// no DescribeInstances), one listing of leaked ENIs (the sweeper's first
// round as well), subnet discovery, the primary ENI's tags and one assign.
func TestStartupCalls(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true})
	before := h.calls()
	if err := h.n.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.settle()
	want := calls{"DescribeInstanceTypes": 1, "DescribeNetworkInterfaces": 2, "DescribeSubnets": 1,
		"CreateTags": 1, "AssignPrivateIpAddresses": 1}
	if diff := cmp.Diff(want, callDelta(before, h.calls())); diff != "" {
		t.Errorf("EC2 calls of a start (-want +got):\n%s", diff)
	}
	if got := h.simCounts(); got != (simCounts{1, 9, 0}) {
		t.Errorf("after start EC2 holds %+v, want the primary ENI with 9 addresses", got)
	}
	h.checkConsistent()
}

// TestChurnCoolingServesDemand: churn on a pool whose targets are met
// (MINIMUM_IP_TARGET=9 on an m5.large's full primary ENI, 9 pods). Each DEL
// leaves a cooling address; the next ADD finds nothing free. When the
// cooldown ends sooner than a new ENI could bring addresses, the ADD waits
// for it and no ENI is attached, round after round; when it ends later, an
// ENI is attached (the control: the rule, not luck, saves the ENI).
func TestChurnCoolingServesDemand(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cooldown time.Duration
		rounds   int
		newENIs  int64
	}{
		{"cooldown within the attach time: no ENI", 800 * time.Millisecond, 4, 0},
		{"cooldown beyond the attach time: one ENI", 20 * time.Second, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{cfg: func(c *config.Config) {
				c.MinimumIPTarget, c.WarmIPTarget, c.IPCooldown = 9, 0, tc.cooldown
			}})
			h.settle()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); h.n.pool.Run(ctx, time.Hour, 0, h.n.PoolCycle) }()
			t.Cleanup(func() { cancel(); <-done })
			for i := range 9 {
				if _, err := h.srv.AddNetwork(ctx, addReq(fmt.Sprint("churn-", i))); err != nil {
					t.Fatalf("pod %d of 9: %v", i, err)
				}
			}
			if got := h.simCounts(); got != (simCounts{1, 9, 0}) {
				t.Fatalf("9 pods: EC2 holds %+v, want one full ENI", got)
			}
			before := h.calls()
			for r := range tc.rounds {
				d, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: fmt.Sprint("churn-", r), IfName: "eth0"})
				if err != nil {
					t.Fatal(err)
				}
				usable, ok := h.coolingEnd()
				if !ok {
					t.Fatal("the released address is not cooling")
				}
				actx, acancel := context.WithTimeout(ctx, 10*time.Second)
				a, err := h.srv.AddNetwork(actx, addReq(fmt.Sprint("new-", r)))
				got := time.Now()
				acancel()
				if err != nil {
					t.Fatalf("round %d: ADD: %v", r, err)
				}
				if tc.newENIs > 0 {
					continue
				}
				if a.IpAllocationMetadata[0].Ipv4Addr != d.IpAllocationMetadata[0].Ipv4Addr {
					t.Errorf("round %d: got %s, want the cooled %s", r, a.IpAllocationMetadata[0].Ipv4Addr, d.IpAllocationMetadata[0].Ipv4Addr)
				} else if got.Before(usable) {
					t.Errorf("round %d: address handed out %s before its cooldown ended", r, usable.Sub(got))
				}
			}
			if d := callDelta(before, h.calls()); d["CreateNetworkInterface"] != tc.newENIs {
				t.Errorf("%d rounds of churn created %d ENIs, want %d (EC2 calls: %v)", tc.rounds, d["CreateNetworkInterface"], tc.newENIs, d)
			}
			h.checkConsistent()
		})
	}
}

// TestWaitersGetOneAssign: 6 ADDs wait at once on an m5.large whose pool
// (WARM_IP_TARGET=2) has 2 free addresses; the 4 left waiting get one
// AssignPrivateIpAddresses of 6, which serves them and leaves the warm
// target met, and no second assign follows for the warm addresses.
func TestWaitersGetOneAssign(t *testing.T) {
	times := fastTimes
	times.Pool = time.Hour // only demand runs the pool here
	h := newHarness(t, harnessOpts{times: &times, cfg: func(c *config.Config) { c.WarmIPTarget = 2 }})
	h.settle()
	if got := h.simCounts(); got != (simCounts{1, 2, 0}) {
		t.Fatalf("settled: EC2 holds %+v, want 2 warm addresses", got)
	}
	before := h.calls()
	errs := make(chan []error, 1)
	go func() { errs <- burst(h, "w-", 6, 15*time.Second) }()
	waitFor(t, 10*time.Second, "4 ADDs waiting", func() bool { return h.waitingADDs() >= 4 })
	if got := counterValue(t, h.n.metrics.AddWaiting); got != 4 {
		t.Errorf("vpccni_add_network_waiting = %v while /v1/pool shows 4 waiting ADDs", got)
	}
	runPoolManager(t, h)
	for i, err := range <-errs {
		if err != nil {
			t.Errorf("pod %d: %v", i, err)
		}
	}
	if w, g := h.waitingADDs(), counterValue(t, h.n.metrics.AddWaiting); w != 0 || g != 0 {
		t.Errorf("every ADD answered, yet /v1/pool shows %d waiting and vpccni_add_network_waiting %v", w, g)
	}
	h.settle()
	want := calls{"AssignPrivateIpAddresses": 1}
	if diff := cmp.Diff(want, callDelta(before, h.calls())); diff != "" {
		t.Errorf("EC2 calls for 4 waiting ADDs (-want +got):\n%s", diff)
	}
	if got := h.simCounts(); got != (simCounts{1, 8, 0}) {
		t.Errorf("EC2 holds %+v, want 6 pods + 2 warm", got)
	}
	h.checkConsistent()
}
