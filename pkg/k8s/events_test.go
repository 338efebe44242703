package k8s

import (
	"fmt"
	"testing"
	"time"
)

// send is what Eventf does around a successful Create.
func send(d *eventDedup, key string, now time.Time) bool {
	if !d.allow(key, now) {
		return false
	}
	d.sent(key, now)
	return true
}

func TestEventDedup(t *testing.T) {
	d := eventDedup{window: time.Minute, last: map[string]time.Time{}}
	t0 := time.Unix(1000, 0)
	if !send(&d, "a", t0) || send(&d, "a", t0.Add(30*time.Second)) || !send(&d, "a", t0.Add(61*time.Second)) {
		t.Error("window not applied")
	}
	for i := range 2 * maxDedupKeys {
		send(&d, fmt.Sprint(i), t0.Add(2*time.Minute))
	}
	if len(d.last) > maxDedupKeys {
		t.Errorf("dedup map grew to %d entries", len(d.last))
	}
	// Once entries expire they are pruned and new keys are tracked again.
	later := t0.Add(10 * time.Minute)
	if !send(&d, "new", later) || send(&d, "new", later.Add(time.Second)) {
		t.Error("new key not deduplicated after pruning")
	}
}

// A send that failed (allow without sent) must not hide the next attempt.
func TestEventDedupRetriesFailedSend(t *testing.T) {
	d := eventDedup{window: time.Minute, last: map[string]time.Time{}}
	t0 := time.Unix(1000, 0)
	if !d.allow("x", t0) {
		t.Fatal("first attempt refused")
	}
	// The Create failed: sent is not called.
	if !d.allow("x", t0.Add(time.Second)) {
		t.Error("a failed send suppressed the retry")
	}
}
