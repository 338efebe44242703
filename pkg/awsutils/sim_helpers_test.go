package awsutils

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// instanceID is the one instance of simtest.Basic().
const instanceID = "i-00000000000000001"

// testConfig points at the simulator, with tiny backoffs so retries cost
// milliseconds, and the client-side limiter off unless a test turns it on.
func testConfig(env *simtest.Env) Config {
	return Config{
		Region:      env.Sim.Region(),
		EC2Endpoint: env.EC2URL,
		Credentials: &StaticCredentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"},
		Retry: RetryConfig{
			MaxAttempts:     5,
			Backoff:         Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond},
			ThrottleBackoff: Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond},
		},
		Limits:         RateLimits{Disabled: true},
		DetachPoll:     Backoff{Base: 5 * time.Millisecond, Max: 50 * time.Millisecond},
		LeakedPageSize: 1000,
	}
}

func newTestEC2(t *testing.T, env *simtest.Env, mutate ...func(*Config)) *EC2 {
	t.Helper()
	cfg := testConfig(env)
	for _, m := range mutate {
		m(&cfg)
	}
	e, err := NewEC2(testCtx(t), cfg, nil)
	if err != nil {
		t.Fatalf("NewEC2: %v", err)
	}
	return e
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func setFaults(t *testing.T, sim *vpcsim.Sim, f vpcsim.Faults) {
	t.Helper()
	if err := sim.SetFaults(f); err != nil {
		t.Fatalf("SetFaults: %v", err)
	}
}

// simENI returns the simulator's view of one ENI.
func simENI(sim *vpcsim.Sim, id string) (vpcsim.ENIView, bool) {
	i := slices.IndexFunc(sim.NetworkInterfaces(), func(v vpcsim.ENIView) bool { return v.ID == id })
	if i < 0 {
		return vpcsim.ENIView{}, false
	}
	return sim.NetworkInterfaces()[i], true
}

func simENIIDs(sim *vpcsim.Sim) []string {
	var ids []string
	for _, v := range sim.NetworkInterfaces() {
		ids = append(ids, v.ID)
	}
	slices.Sort(ids)
	return ids
}

// recorder is an Observer that keeps every attempt's report.
type recorder struct {
	mu    sync.Mutex
	calls []observed
}

type observed struct {
	action, code string
	throttled    bool
}

func (r *recorder) ObserveEC2Call(string, time.Duration, string) {}

func (r *recorder) ObserveUnhandled(string, string) {}

func (r *recorder) ObserveIMDSRead(time.Duration, bool) {}

func (r *recorder) ObserveEC2Listing(string, string) {}

func (r *recorder) ObserveAPIError(string, string) {}

func (r *recorder) ObserveEC2Attempt(action string, _ time.Duration, code string, throttled bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, observed{action, code, throttled})
}

func (r *recorder) snapshot() []observed {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}
