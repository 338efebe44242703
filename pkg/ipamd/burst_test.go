package ipamd

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// runPoolManager runs the pool manager as Run does, until the test ends.
func runPoolManager(t *testing.T, h *harness) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.n.pool.Run(ctx, h.n.times.Pool, 0, h.n.PoolCycle) }()
	t.Cleanup(func() { cancel(); <-done })
}

// burst sends n ADDs at once and returns the errors, by pod.
func burst(h *harness, prefix string, n int, deadline time.Duration) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			_, errs[i] = h.srv.AddNetwork(ctx, addReq(fmt.Sprint(prefix, i)))
		}()
	}
	wg.Wait()
	return errs
}

// TestBurstBeyondCapacity: 30 ADDs at once on a fresh m5.large (3 ENIs × 9
// addresses, 27 pods) under EC2 latency. The pool sizes its next action to
// the whole demand (both missing ENIs attached together), never beyond the
// instance's limits; the 3 ADDs beyond capacity fail fast naming the limit,
// not at their deadline. Once the pods are gone the surplus goes back.
func TestBurstBeyondCapacity(t *testing.T) {
	times := fastTimes
	times.Pool = time.Hour // only demand runs the pool here
	h := newHarness(t, harnessOpts{times: &times, cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	h.settle()
	d := func(ms int) vpcsim.Duration { return vpcsim.Duration(time.Duration(ms) * time.Millisecond) }
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{
		"CreateNetworkInterface": d(200), "AttachNetworkInterface": d(200), "ModifyNetworkInterfaceAttribute": d(200),
	}}); err != nil {
		t.Fatal(err)
	}
	runPoolManager(t, h)
	before := h.calls()
	start := time.Now()
	const deadline = 15 * time.Second
	errs := burst(h, "burst-", 30, deadline)
	took := time.Since(start)
	failed := 0
	for i, err := range errs {
		if err == nil {
			continue
		}
		failed++
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "m5.large card 0 takes 3 ENIs × 9 secondary IPv4 addresses") {
			t.Errorf("pod %d: %v, want ResourceExhausted naming the limit", i, err)
		}
	}
	if failed != 3 {
		t.Errorf("%d ADDs failed, want the 3 beyond the node's 27 addresses", failed)
	}
	if took > deadline/3 {
		t.Errorf("burst took %s: the ADDs beyond capacity waited instead of failing fast", took)
	}
	t.Logf("30 ADDs on 27 addresses: all answered in %s", took)
	if got := h.simCounts(); got != (simCounts{3, 27, 0}) {
		t.Errorf("EC2 holds %+v, want the instance's limit {3 27 0}", got)
	}
	calls := callDelta(before, h.calls())
	if calls["CreateNetworkInterface"] != 2 || calls["AttachNetworkInterface"] != 2 {
		t.Errorf("calls %v, want exactly the two missing ENIs created and attached", calls)
	}
	if errs := h.env.Sim.Stats().Errors["AttachNetworkInterface"]; len(errs) != 0 {
		t.Errorf("attach refused (over the limit or a taken device): %v", errs)
	}
	awaitWired(t, h)
	h.checkConsistent()

	// Demand gone: back to the warm target (the primary's 9 addresses)
	// within the usual spacing, which is none in fastTimes.
	ctx := context.Background()
	for i, err := range errs {
		if err != nil {
			continue
		}
		if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: fmt.Sprint("burst-", i), IfName: "eth0"}); err != nil {
			t.Fatal(err)
		}
	}
	h.settle()
	if got, want := h.simCounts(), (simCounts{1, 9, 0}); got != want {
		t.Errorf("after the burst: EC2 holds %+v, want %+v", got, want)
	}
	awaitWired(t, h)
	h.checkConsistent()
}

// TestBurstAttachesENIsTogether: on a fresh m5.xlarge (4 ENIs × 14
// addresses) whose primary ENI is full, 26 ADDs wait at once. They need two
// more ENIs, and both are attached in one action: their EC2 calls overlap
// (each create+attach+modify takes ≥ 600 ms here, so one after the other
// would set them ≥ 600 ms apart). Every ADD succeeds; no limit is passed.
func TestBurstAttachesENIsTogether(t *testing.T) {
	times := fastTimes
	times.Pool = time.Hour
	h := newHarness(t, harnessOpts{instanceType: "m5.xlarge", times: &times})
	h.settle()
	h.addPods("primary-", 14)
	d := func(ms int) vpcsim.Duration { return vpcsim.Duration(time.Duration(ms) * time.Millisecond) }
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{
		"CreateNetworkInterface": d(200), "AttachNetworkInterface": d(200), "ModifyNetworkInterfaceAttribute": d(200),
	}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	errs := make(chan []error, 1)
	go func() { errs <- burst(h, "b-", 26, 15*time.Second) }()
	// The pool manager starts once all 26 wait, as if they came together.
	waitFor(t, 10*time.Second, "26 ADDs waiting", func() bool { return h.waitingADDs() >= 26 })
	runPoolManager(t, h)
	for i, err := range <-errs {
		if err != nil {
			t.Errorf("pod %d: %v", i, err)
		}
	}
	t.Logf("26 waiting ADDs on a fresh m5.xlarge: all done in %s", time.Since(start))
	var created []time.Time
	for _, e := range h.pool(0).ENIs {
		if !e.IsPrimary {
			created = append(created, e.CreatedAt)
		}
	}
	if len(created) < 2 {
		t.Fatalf("%d new ENIs, want at least the 2 the burst needs", len(created))
	}
	gap := created[1].Sub(created[0]).Abs()
	if gap >= 500*time.Millisecond {
		t.Errorf("the burst's two ENIs were added %s apart: attached one after the other", gap)
	}
	if got := h.simCounts(); got.ENIs > 4 || got.IPs > 4*14 {
		t.Errorf("EC2 holds %+v, beyond m5.xlarge's 4 ENIs × 14", got)
	}
	awaitWired(t, h)
	h.checkConsistent()
}

// TestPoolRefillsBelowWarmTargetAtOnce: the first pod that takes the pool
// below WARM_ENI_TARGET=1 starts the refill at once (the tick here is an
// hour), so later pods of a burst find the next ENI ready.
func TestPoolRefillsBelowWarmTargetAtOnce(t *testing.T) {
	times := fastTimes
	times.Pool = time.Hour
	h := newHarness(t, harnessOpts{times: &times})
	h.settle()
	runPoolManager(t, h)
	if _, err := h.srv.AddNetwork(context.Background(), addReq("first")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for h.simCounts().ENIs < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("pool below its warm target for 3 s and no ENI attached: %+v", h.simCounts())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := h.simCounts(); got != (simCounts{2, 18, 0}) {
		t.Errorf("EC2 holds %+v, want the warm ENI {2 18 0}", got)
	}
}

// TestBurstFigures measures, at ipamd's gRPC handler (no plugin, no
// kernel), the two burst figures under realistic EC2 timing: 30
// pods at once on a fresh m5.xlarge, and 110 at once on a fresh m5.4xlarge
// with prefix delegation. A measurement, not a check: it runs only with
// VPC_CNI_POOL_FIGURES=1 and logs p50/p99 (the goals belong to make bench).
func TestBurstFigures(t *testing.T) {
	if os.Getenv("VPC_CNI_POOL_FIGURES") != "1" {
		t.Skip("a measurement: set VPC_CNI_POOL_FIGURES=1")
	}
	d := func(ms int) vpcsim.Duration { return vpcsim.Duration(time.Duration(ms) * time.Millisecond) }
	realistic := vpcsim.Faults{
		Latency: map[string]vpcsim.Duration{"*": d(100), "DescribeNetworkInterfaces": d(50), "DescribeInstances": d(50),
			"DescribeInstanceTypes": d(50), "DescribeSubnets": d(50), "CreateNetworkInterface": d(200), "AttachNetworkInterface": d(200),
			"AssignPrivateIpAddresses": d(200), "UnassignPrivateIpAddresses": d(200), "DetachNetworkInterface": d(200),
			"DeleteNetworkInterface": d(200), "ModifyNetworkInterfaceAttribute": d(200)},
		AttachDelay: d(1000), DetachDelay: d(1000), IMDSLag: d(2000), Throttle: vpcsim.Throttle{Enabled: true},
	}
	for _, tc := range []struct {
		typ  string
		pd   bool
		pods int
	}{{"m5.xlarge", false, 30}, {"m5.4xlarge", true, 110}} {
		t.Run(fmt.Sprint(tc.typ, "/", tc.pods), func(t *testing.T) {
			times := Intervals{AddWait: 20 * time.Second}
			h := newHarness(t, harnessOpts{instanceType: tc.typ, times: &times, cfg: func(c *config.Config) {
				c.EnablePrefixDelegation = tc.pd
				if tc.pd {
					c.WarmPrefixTarget = 1
				}
			}})
			h.settle()
			if err := h.env.Sim.SetFaults(realistic); err != nil {
				t.Fatal(err)
			}
			runPoolManager(t, h)
			lat := make([]time.Duration, tc.pods)
			var wg sync.WaitGroup
			failed := 0
			var mu sync.Mutex
			for i := range tc.pods {
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					start := time.Now()
					_, err := h.srv.AddNetwork(ctx, addReq(fmt.Sprint("f-", i)))
					lat[i] = time.Since(start)
					if err != nil {
						mu.Lock()
						failed++
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			slices.Sort(lat)
			t.Logf("%d pods at once on a fresh %s (PD %v): ADD p50 %s, p99 %s, max %s, %d failed; EC2 holds %+v",
				tc.pods, tc.typ, tc.pd, lat[len(lat)/2].Round(time.Millisecond), lat[len(lat)*99/100].Round(time.Millisecond),
				lat[len(lat)-1].Round(time.Millisecond), failed, h.simCounts())
			if failed > 0 {
				t.Errorf("%d of %d ADDs failed within the node's capacity", failed, tc.pods)
			}
		})
	}
}

// TestADDsArrivingDuringAnAttachGetTheirOwnENI: on an m5.xlarge (4 ENIs ×
// 14) whose primary ENI is full, ADDs that arrive while an ENI is still
// attaching, more than it can hold, get a second ENI created at once, not
// after the first attach is done (attaches are held 3 s here). Every ADD
// succeeds and no limit is passed.
func TestADDsArrivingDuringAnAttachGetTheirOwnENI(t *testing.T) {
	times := fastTimes
	times.Pool = time.Hour // only demand runs the pool here
	h := newHarness(t, harnessOpts{instanceType: "m5.xlarge", times: &times})
	h.settle()
	h.addPods("primary-", 14)
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{
		"AttachNetworkInterface": vpcsim.Duration(3 * time.Second),
	}}); err != nil {
		t.Fatal(err)
	}
	before := h.calls()
	created := func() int64 { return callDelta(before, h.calls())["CreateNetworkInterface"] }
	runPoolManager(t, h)
	first, second := make(chan []error, 1), make(chan []error, 1)
	go func() { first <- burst(h, "first-", 5, 20*time.Second) }()
	waitFor(t, 10*time.Second, "the first ENI's create", func() bool { return created() >= 1 })
	go func() { second <- burst(h, "second-", 14, 20*time.Second) }()
	waitFor(t, 10*time.Second, "a second ENI's create", func() bool { return created() >= 2 })
	if n := len(h.pool(0).ENIs); n != 1 {
		t.Errorf("the second ENI was created once %d ENIs were in the store: it waited for the first attach", n)
	}
	for i, err := range append(<-first, <-second...) {
		if err != nil {
			t.Errorf("ADD %d: %v", i, err)
		}
	}
	if got := h.simCounts(); got.ENIs > 4 || got.IPs > 4*14 {
		t.Errorf("EC2 holds %+v, beyond m5.xlarge's 4 ENIs × 14", got)
	}
	if errs := h.env.Sim.Stats().Errors["AttachNetworkInterface"]; len(errs) != 0 {
		t.Errorf("attach refused (over the limit or a taken device): %v", errs)
	}
	awaitWired(t, h)
	h.checkConsistent()
}

// TestADDsArrivingDuringAnAssignGetAnENIBesideIt: on a fresh m5.xlarge (4
// ENIs × 14) whose primary ENI is being given its 14 addresses (assigns
// are held 3 s here), ADDs that arrive meanwhile, more than those 14, get
// an ENI created at once beside the assign, not after it. Every ADD
// succeeds and no limit is passed.
func TestADDsArrivingDuringAnAssignGetAnENIBesideIt(t *testing.T) {
	times := fastTimes
	times.Pool = time.Hour // only demand runs the pool here
	h := newHarness(t, harnessOpts{instanceType: "m5.xlarge", times: &times})
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{
		"AssignPrivateIpAddresses": vpcsim.Duration(3 * time.Second),
	}}); err != nil {
		t.Fatal(err)
	}
	before := h.calls()
	called := func(action string) int64 { return callDelta(before, h.calls())[action] }
	runPoolManager(t, h)
	first, second := make(chan []error, 1), make(chan []error, 1)
	go func() { first <- burst(h, "first-", 5, 20*time.Second) }()
	waitFor(t, 10*time.Second, "the primary ENI's assign", func() bool {
		for _, a := range h.n.track.Current() {
			if strings.Contains(a.What, "AssignPrivateIpAddresses") {
				return true
			}
		}
		return false
	})
	go func() { second <- burst(h, "second-", 20, 20*time.Second) }()
	waitFor(t, 10*time.Second, "an ENI's create", func() bool { return called("CreateNetworkInterface") >= 1 })
	for _, e := range h.pool(0).ENIs {
		if e.IsPrimary && len(e.CIDRs) != 0 {
			t.Errorf("the ENI was created once the primary held %d addresses: it waited for the assign", len(e.CIDRs))
		}
	}
	for i, err := range append(<-first, <-second...) {
		if err != nil {
			t.Errorf("ADD %d: %v", i, err)
		}
	}
	if got := h.simCounts(); got.ENIs > 4 || got.IPs > 4*14 {
		t.Errorf("EC2 holds %+v, beyond m5.xlarge's 4 ENIs × 14", got)
	}
	for _, action := range []string{"AttachNetworkInterface", "AssignPrivateIpAddresses"} {
		if errs := h.env.Sim.Stats().Errors[action]; len(errs) != 0 {
			t.Errorf("%s refused: %v", action, errs)
		}
	}
	awaitWired(t, h)
	h.checkConsistent()
}
