package vpcsim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Duration is a time.Duration that reads and writes as a Go duration string
// ("50ms") in YAML and JSON.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler; it accepts "1.5s" or nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration %s: want a string like \"50ms\"", b)
	}
	*d = Duration(n)
	return nil
}

// Faults are the realism knobs. They can be set in the scenario and replaced
// at runtime (Sim.SetFaults, admin PUT /faults).
type Faults struct {
	// Latency per EC2 action; key "*" applies to actions not listed.
	Latency map[string]Duration `json:"latency,omitempty"`
	// AttachDelay is how long an attachment stays "attaching".
	AttachDelay Duration `json:"attachDelay,omitempty"`
	// DetachDelay is how long an attachment stays "detaching".
	DetachDelay Duration `json:"detachDelay,omitempty"`
	// IMDSLag: IMDS serves the instance as it was this long ago.
	IMDSLag Duration `json:"imdsLag,omitempty"`
	// Errors injects EC2 errors.
	Errors []ErrorRule `json:"errors,omitempty"`
	// Throttle enables EC2's per-account token buckets.
	Throttle Throttle `json:"throttle,omitempty"`
	// DenyActions answer UnauthorizedOperation.
	DenyActions []string `json:"denyActions,omitempty"`
	// PageBeforeFilter: paged describes apply MaxResults before the
	// filters, as EC2 may, so a page can be short or empty while NextToken
	// is still set (see pageFiltered).
	PageBeforeFilter bool `json:"pageBeforeFilter,omitempty"`
	// Seed makes error injection by rate reproducible (0 → 1).
	Seed uint64 `json:"seed,omitempty"`
}

// ErrorRule injects Code into calls of Action ("*" = any) with probability
// Rate (0 or 1 = always), at most Count times (0 = unlimited).
type ErrorRule struct {
	Action  string  `json:"action"`
	Code    string  `json:"code"`
	Message string  `json:"message,omitempty"`
	Rate    float64 `json:"rate,omitempty"`
	Count   int     `json:"count,omitempty"`
	// After carries the action out before answering Code: the caller sees
	// an error for a call EC2 applied (a lost or failed response).
	After bool `json:"after,omitempty"`
}

// Throttle configures EC2's request token buckets.
type Throttle struct {
	Enabled bool `json:"enabled"`
	// Buckets overrides the default size/refill of a class: describe,
	// describeUnfiltered, mutating, eniCreateDelete, ipAssign, createTags,
	// runInstances.
	Buckets map[string]Bucket `json:"buckets,omitempty"`
}

// Bucket is a token bucket: Size tokens, Refill tokens per second.
type Bucket struct {
	Size   float64 `json:"size"`
	Refill float64 `json:"refill"`
}

func (f Faults) validate() error {
	var errs []string
	for a, d := range f.Latency {
		if d < 0 {
			errs = append(errs, fmt.Sprintf("faults.latency[%s]: negative", a))
		}
	}
	if f.AttachDelay < 0 || f.DetachDelay < 0 || f.IMDSLag < 0 {
		errs = append(errs, "faults: delays must not be negative")
	}
	for i, r := range f.Errors {
		if r.Action == "" || r.Code == "" {
			errs = append(errs, fmt.Sprintf("faults.errors[%d]: action and code are required", i))
		}
		if r.Rate < 0 || r.Rate > 1 {
			errs = append(errs, fmt.Sprintf("faults.errors[%d].rate %v: want 0..1", i, r.Rate))
		}
		if r.Count < 0 {
			errs = append(errs, fmt.Sprintf("faults.errors[%d].count: negative", i))
		}
	}
	for k, b := range f.Throttle.Buckets {
		if _, ok := defaultBuckets[k]; !ok {
			errs = append(errs, fmt.Sprintf("faults.throttle.buckets: unknown class %q", k))
		}
		if b.Size <= 0 || b.Refill <= 0 {
			errs = append(errs, fmt.Sprintf("faults.throttle.buckets[%s]: size and refill must be positive", k))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// injector decides which calls fail, per the current Faults.
type injector struct {
	mu   sync.Mutex
	f    Faults
	used []int
	rng  *rand.Rand
	deny map[string]bool
}

func newInjector(f Faults) *injector {
	in := &injector{}
	in.set(f)
	return in
}

func (in *injector) set(f Faults) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.f = f
	in.used = make([]int, len(f.Errors))
	seed := f.Seed
	if seed == 0 {
		seed = 1
	}
	in.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	in.deny = map[string]bool{}
	for _, a := range f.DenyActions {
		in.deny[a] = true
	}
}

func (in *injector) faults() Faults {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.f
}

func (in *injector) latency(action string) time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	if d, ok := in.f.Latency[action]; ok {
		return time.Duration(d)
	}
	return time.Duration(in.f.Latency["*"])
}

// check returns the error to inject into this call, if any, and whether
// the action is to be carried out first (ErrorRule.After).
func (in *injector) check(action string) (e *APIError, after bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.deny[action] || in.deny["*"] {
		return apiErr("UnauthorizedOperation", "You are not authorized to perform this operation. User is not authorized to perform: ec2:%s", action), false
	}
	for i, r := range in.f.Errors {
		if r.Action != action && r.Action != "*" {
			continue
		}
		if r.Count > 0 && in.used[i] >= r.Count {
			continue
		}
		if r.Rate > 0 && r.Rate < 1 && in.rng.Float64() >= r.Rate {
			continue
		}
		in.used[i]++
		msg := r.Message
		if msg == "" {
			msg = "Injected fault (vpcsim)."
		}
		return &APIError{Code: r.Code, Message: msg}, r.After
	}
	return nil, false
}
