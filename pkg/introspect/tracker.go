package introspect

import (
	"sort"
	"sync"
	"time"
)

// Tracker records what ipamd is waiting on: an EC2 call, IMDS, a cooldown.
// Loops call Begin before a wait and the returned func when it ends.
type Tracker struct {
	mu   sync.Mutex
	next uint64
	now  func() time.Time
	open map[uint64]Activity
}

// NewTracker returns an empty tracker; now may be nil for time.Now.
func NewTracker(now func() time.Time) *Tracker {
	if now == nil {
		now = time.Now
	}
	return &Tracker{now: now, open: map[uint64]Activity{}}
}

// Begin records an activity and returns the func that ends it. Safe to call
// the returned func more than once.
func (t *Tracker) Begin(kind, what string) (end func()) {
	t.mu.Lock()
	id := t.next
	t.next++
	t.open[id] = Activity{Kind: kind, What: what, Since: t.now()}
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		delete(t.open, id)
		t.mu.Unlock()
	}
}

// Current lists open activities, oldest first.
func (t *Tracker) Current() []Activity {
	t.mu.Lock()
	out := make([]Activity, 0, len(t.open))
	for _, a := range t.open {
		out = append(out, a)
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Since.Equal(out[j].Since) {
			return out[i].Since.Before(out[j].Since)
		}
		return out[i].What < out[j].What
	})
	return out
}
