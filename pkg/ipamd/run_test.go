package ipamd

import (
	"testing"
	"time"
)

// TestReconcileDue: a reconcile waits for a quiet interval after the last
// pool action, but constant churn postpones it at most maxReconcileGap.
func TestReconcileDue(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name                        string
		sinceAction, sinceReconcile time.Duration
		want                        bool
	}{
		{"quiet", 2 * time.Minute, time.Minute, true},
		{"busy", time.Second, time.Minute, false},
		{"busy for too long", time.Second, maxReconcileGap, true},
	} {
		if got := reconcileDue(now, now.Add(-tc.sinceAction), now.Add(-tc.sinceReconcile), time.Minute); got != tc.want {
			t.Errorf("%s: due %v, want %v", tc.name, got, tc.want)
		}
	}
}
