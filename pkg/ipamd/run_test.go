package ipamd

import (
	"bytes"
	"context"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
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

// TestRunInitFailureLeavesNoGoroutine: when Init fails, Run returns its
// error and leaves no goroutine of its own behind, even though its context
// never ends.
func TestRunInitFailureLeavesNoGoroutine(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true})
	if err := h.env.Sim.SetFaults(vpcsim.Faults{DenyActions: []string{"DescribeInstanceTypes"}}); err != nil {
		t.Fatal(err)
	}
	l, err := Listen(h.cfg.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // only after the check below
	if err := h.n.Run(ctx, l); err == nil || !strings.Contains(err.Error(), "UnauthorizedOperation") {
		t.Fatalf("Run with a failing Init: %v, want EC2's refusal", err)
	}
	var stacks bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&stacks, 2); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stacks.String(), "ipamd.(*IPAM).Run.func") {
		t.Errorf("a goroutine of Run is still running after it returned:\n%s", stacks.String())
	}
}
