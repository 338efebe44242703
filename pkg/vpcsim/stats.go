package vpcsim

import "sync"

// Stats counts EC2 calls. Maps are keyed by action; Errors by action then code.
type Stats struct {
	Calls     map[string]int64            `json:"calls"`
	Throttled map[string]int64            `json:"throttled"`
	Errors    map[string]map[string]int64 `json:"errors"`
}

type statsRecorder struct {
	mu sync.Mutex
	s  Stats
}

func newStatsRecorder() *statsRecorder {
	return &statsRecorder{s: Stats{Calls: map[string]int64{}, Throttled: map[string]int64{}, Errors: map[string]map[string]int64{}}}
}

func (r *statsRecorder) record(action, code string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Calls[action]++
	if code == "" {
		return
	}
	if code == "RequestLimitExceeded" {
		r.s.Throttled[action]++
	}
	m := r.s.Errors[action]
	if m == nil {
		m = map[string]int64{}
		r.s.Errors[action] = m
	}
	m[code]++
}

func (r *statsRecorder) snapshot() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := Stats{Calls: map[string]int64{}, Throttled: map[string]int64{}, Errors: map[string]map[string]int64{}}
	for k, v := range r.s.Calls {
		out.Calls[k] = v
	}
	for k, v := range r.s.Throttled {
		out.Throttled[k] = v
	}
	for a, m := range r.s.Errors {
		c := map[string]int64{}
		for k, v := range m {
			c[k] = v
		}
		out.Errors[a] = c
	}
	return out
}
