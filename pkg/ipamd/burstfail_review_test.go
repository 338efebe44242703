package ipamd

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestEC2FailuresMidBurstLeakNothing: on an m5.xlarge (4 ENIs × 14) whose
// primary is full, 40 ADDs wait at once, so three ENIs are created and
// attached together; EC2 fails some of those calls (once or twice each).
// Afterwards no ENI is left unattached in EC2, the datastore holds exactly
// EC2's attached ENIs (none that failed), no limit is passed, and the
// pool retries past the back-off so every ADD within capacity succeeds.
func TestEC2FailuresMidBurstLeakNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		action string
		code   string
		count  int
	}{
		{"create fails", "CreateNetworkInterface", "UnauthorizedOperation", 1},
		{"attach fails", "AttachNetworkInterface", "UnauthorizedOperation", 2},
		{"attach throttled", "AttachNetworkInterface", "RequestLimitExceeded", 6},
		{"create throttled", "CreateNetworkInterface", "RequestLimitExceeded", 6},
		{"subnet full", "CreateNetworkInterface", "InsufficientFreeAddressesInSubnet", 1},
		{"delete-on-termination fails", "ModifyNetworkInterfaceAttribute", "UnauthorizedOperation", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("VPC_CNI_TEST_FAST_INTERVALS", "true") // 2 s no-growth cooldown after a full subnet
			times := fastTimes
			times.Pool = 50 * time.Millisecond
			times.FailureBackoff = 200 * time.Millisecond
			times.AddWait = 15 * time.Second
			// A failure shows ipamd's debug log: each pool action and ENI
			// attach or free, to tell a stale limit from a real one.
			var logs syncBuffer
			t.Cleanup(func() {
				if t.Failed() {
					logs.mu.Lock()
					t.Log("LOGS\n" + logs.b.String())
					logs.mu.Unlock()
				}
			})
			h := newHarness(t, harnessOpts{instanceType: "m5.xlarge", times: &times, cfg: func(c *config.Config) { c.IPCooldown = 0 },
				log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			h.settle()
			h.addPods("primary-", 14)
			d := vpcsim.Duration(200 * time.Millisecond)
			if err := h.env.Sim.SetFaults(vpcsim.Faults{
				Latency: map[string]vpcsim.Duration{"CreateNetworkInterface": d, "AttachNetworkInterface": d},
				Errors:  []vpcsim.ErrorRule{{Action: tc.action, Code: tc.code, Count: tc.count}},
			}); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			errs := make(chan []error, 1)
			go func() { errs <- burst(h, "b-", 40, 20*time.Second) }()
			waitFor(t, 10*time.Second, "40 waiting ADDs", func() bool { return h.waitingADDs() >= 40 })
			runPoolManager(t, h)
			failed := 0
			for i, err := range <-errs {
				if err != nil {
					failed++
					t.Errorf("ADD %d: %v", i, err)
				}
			}
			t.Logf("40 ADDs with %s %s ×%d: %d failed, done in %s; EC2 holds %+v", tc.action, tc.code, tc.count,
				failed, time.Since(start).Round(time.Millisecond), h.simCounts())
			if got := h.simCounts(); got.ENIs > 4 || got.IPs > 4*14 {
				t.Errorf("EC2 holds %+v, beyond m5.xlarge's 4 ENIs × 14", got)
			}
			if left := h.unattachedENIs(); len(left) != 0 {
				t.Errorf("ENIs left unattached in EC2: %v", left)
			}
			if errs := h.env.Sim.Stats().Errors["AttachNetworkInterface"]; tc.action != "AttachNetworkInterface" && len(errs) != 0 {
				t.Errorf("attach refused (over the limit or a taken device): %v", errs)
			}
			awaitWired(t, h)
			h.checkConsistent()

			// Demand gone: back to the warm target (the primary's 14
			// addresses with WARM_ENI_TARGET=1), nothing left waiting on EC2.
			for i := range 40 {
				if _, err := h.srv.DelNetwork(context.Background(), &rpc.DelNetworkRequest{NetworkName: "aws-cni",
					ContainerId: fmt.Sprint("b-", i), IfName: "eth0"}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range 14 {
				if _, err := h.srv.DelNetwork(context.Background(), &rpc.DelNetworkRequest{NetworkName: "aws-cni",
					ContainerId: fmt.Sprint("primary-", i), IfName: "eth0"}); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, 10*time.Second, "the surplus released", func() bool {
				// A freed ENI is detached, then deleted: none may stay behind.
				return h.simCounts() == (simCounts{1, 14, 0}) && len(h.n.Introspection().Pool().WaitingOn) == 0 &&
					len(h.unattachedENIs()) == 0
			})
			awaitWired(t, h)
			h.checkConsistent()
		})
	}
}

// TestPersistentCreateFailureBacksOffAndNamesIt: when every ENI create
// fails mid-burst, ADDs that no address can serve fail with EC2's cause,
// the pool manager shows its back-off in /v1/pool, and nothing is left in
// EC2 but the full primary.
func TestPersistentCreateFailureBacksOffAndNamesIt(t *testing.T) {
	times := fastTimes
	times.Pool = 50 * time.Millisecond
	times.FailureBackoff = 5 * time.Second
	times.AddWait = 3 * time.Second
	h := newHarness(t, harnessOpts{instanceType: "m5.xlarge", times: &times})
	h.settle()
	h.addPods("primary-", 14)
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "CreateNetworkInterface", Code: "UnauthorizedOperation"}}}); err != nil {
		t.Fatal(err)
	}
	runPoolManager(t, h)
	for i, err := range burst(h, "b-", 30, 10*time.Second) {
		if err == nil || !strings.Contains(err.Error(), "UnauthorizedOperation") {
			t.Errorf("ADD %d: %v, want EC2's refusal named", i, err)
		}
	}
	backingOff := false
	for _, a := range h.n.Introspection().Pool().WaitingOn {
		backingOff = backingOff || strings.Contains(a.What, "backoff")
	}
	if !backingOff {
		t.Errorf("/v1/pool waits on %+v, want the back-off shown", h.n.Introspection().Pool().WaitingOn)
	}
	if got := h.simCounts(); got != (simCounts{1, 14, 0}) {
		t.Errorf("EC2 holds %+v, want the full primary only", got)
	}
	if left := h.unattachedENIs(); len(left) != 0 {
		t.Errorf("ENIs left unattached in EC2: %v", left)
	}
	awaitWired(t, h)
	h.checkConsistent()
}
