package ipamd

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestThrottledBurstServesEveryADD: on an m5.xlarge (4 ENIs × 14) whose
// primary is full, 30 ADDs arrive at once while the account's ENI
// create/delete bucket, drained by other nodes, holds one token and gains
// one every 6 s: the three ENIs the burst needs can be created by about
// 12 s. ipamd runs with the retry policy cmd/ipamd gives its EC2 client
// and its default failure back-off. Every ADD is served within the
// plugin's 20 s, and EC2 sees a few retries, not a loop. Before, the
// throttle back-off doubled to 8–16 s steps and the last create slept
// through the tokens the bucket refilled: two ADDs failed at their
// deadline (in 6 of 7 runs).
func TestThrottledBurstServesEveryADD(t *testing.T) {
	times := fastTimes
	times.Pool = time.Second
	times.FailureBackoff = time.Second // ipamd's default
	times.AddWait = 20 * time.Second
	var logs syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			logs.mu.Lock()
			t.Log("LOGS\n" + logs.b.String())
			logs.mu.Unlock()
		}
	})
	retry := EC2Retry()
	h := newHarness(t, harnessOpts{instanceType: "m5.xlarge", times: &times, retry: &retry,
		cfg: func(c *config.Config) { c.IPCooldown = 0 },
		log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	h.settle()
	h.addPods("primary-", 14)
	if err := h.env.Sim.SetFaults(vpcsim.Faults{
		Throttle: vpcsim.Throttle{Enabled: true, Buckets: map[string]vpcsim.Bucket{
			"eniCreateDelete": {Size: 1, Refill: 1.0 / 6},
		}},
	}); err != nil {
		t.Fatal(err)
	}
	before := h.calls()
	runPoolManager(t, h)
	start := time.Now()
	failed := 0
	for i, err := range burst(h, "b-", 30, 20*time.Second) {
		if err != nil {
			failed++
			t.Errorf("ADD %d: %v", i, err)
		}
	}
	took := time.Since(start)
	calls := callDelta(before, h.calls())
	total := int64(0)
	for _, n := range calls {
		total += n
	}
	t.Logf("30 ADDs under throttling: %d failed, done in %s; EC2 calls %v (total %d), errors %v",
		failed, took.Round(time.Millisecond), calls, total, h.env.Sim.Stats().Errors)
	// Three ENIs take three calls each, plus a retry every 1.5–3 s of the
	// creates waiting for a token: a few dozen at most. A tight loop
	// makes hundreds.
	if total > 40 {
		t.Errorf("%d EC2 calls for a 30-pod burst: %v", total, calls)
	}
	if got := h.simCounts(); got.ENIs > 4 || got.IPs > 4*14 {
		t.Errorf("EC2 holds %+v, beyond m5.xlarge's 4 ENIs × 14", got)
	}
	if left := h.unattachedENIs(); len(left) != 0 {
		t.Errorf("ENIs left unattached in EC2: %v", left)
	}
	awaitWired(t, h)
	h.checkConsistent()
}

// TestADDFailingDuringAThrottledCreateNamesIt: every ENI create is
// throttled and the primary is full, so an ADD runs out of time while
// ipamd's create is still in its retries. Its error names the EC2 call
// ipamd was waiting on. Before, it named only the datastore's figures
// ("all 14 addresses assigned"), as though ipamd had asked EC2 nothing.
func TestADDFailingDuringAThrottledCreateNamesIt(t *testing.T) {
	times := fastTimes
	times.FailureBackoff = time.Second
	retry := EC2Retry()
	h := newHarness(t, harnessOpts{instanceType: "m5.xlarge", times: &times, retry: &retry,
		cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	h.settle()
	h.addPods("primary-", 14)
	if err := h.env.Sim.SetFaults(vpcsim.Faults{
		Errors: []vpcsim.ErrorRule{{Action: "CreateNetworkInterface", Code: "RequestLimitExceeded"}},
	}); err != nil {
		t.Fatal(err)
	}
	runPoolManager(t, h)
	errs := burst(h, "b-", 1, 3*time.Second)
	if errs[0] == nil {
		t.Fatal("ADD on a full primary with every create throttled succeeded")
	}
	if !strings.Contains(errs[0].Error(), "CreateNetworkInterface") {
		t.Errorf("ADD error %q does not name the EC2 call ipamd waits on", errs[0])
	}
	t.Log(errs[0])
}
