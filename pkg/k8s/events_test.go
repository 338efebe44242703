package k8s

import (
	"fmt"
	"testing"
	"time"
)

func TestEventDedup(t *testing.T) {
	d := eventDedup{window: time.Minute, last: map[string]time.Time{}}
	t0 := time.Unix(1000, 0)
	if !d.allow("a", t0) || d.allow("a", t0.Add(30*time.Second)) || !d.allow("a", t0.Add(61*time.Second)) {
		t.Error("window not applied")
	}
	for i := range 2 * maxDedupKeys {
		d.allow(fmt.Sprint(i), t0.Add(2*time.Minute))
	}
	if len(d.last) > maxDedupKeys {
		t.Errorf("dedup map grew to %d entries", len(d.last))
	}
	// Once entries expire they are pruned and new keys are tracked again.
	later := t0.Add(10 * time.Minute)
	if !d.allow("new", later) || d.allow("new", later.Add(time.Second)) {
		t.Error("new key not deduplicated after pruning")
	}
}
