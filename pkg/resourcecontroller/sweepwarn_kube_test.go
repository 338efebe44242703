package resourcecontroller

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// logBuffer is an io.Writer safe for the controller's goroutines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// TestKubeSweepFailureWarnedOncePerCause: the start-up sweep of lost branches
// (lostbranches.go) is retried at each GC pass until it succeeds, and its
// failure is to be told once per cause. EC2 refuses its describe
// (UnauthorizedOperation: an IAM policy without it) at every pass: one
// warning, not one per pass. Before, the note was keyed by the error's
// text, which names each request's id, so every pass warned again.
func TestKubeSweepFailureWarnedOncePerCause(t *testing.T) {
	w := newWorld(t)
	_, admin := kubeAdmin(t)
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "DescribeNetworkInterfaces", Code: "UnauthorizedOperation"}}}); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	c, err := New(Config{ClusterName: "test", VPCID: simtest.VPCID, GCInterval: 20 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil))}, w.ec2)
	if err != nil {
		t.Fatal(err)
	}
	c.c, c.api = admin, admin
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.runGC(ctx) }()
	waitFor(t, 30*time.Second, "5 refused sweeps", func() (bool, string) {
		n := w.env.Sim.Stats().Errors["DescribeNetworkInterfaces"]["UnauthorizedOperation"]
		return n >= 5, fmt.Sprint(n)
	})
	cancel()
	<-done
	const msg = "sweeping the branch ENIs of instances no node names"
	if n := logs.count(msg); n != 1 {
		t.Errorf("%d warnings %q for 5 refusals with one cause, want 1", n, msg)
	}
}

// TestKubeSweepHeldBackDescribesNothing: a Node without a providerID holds
// the lost-branch sweep back (it may be any instance), and the sweep is
// tried again at each GC pass. A pass it holds back must not describe the
// VPC's branch ENIs (a paged describe of the whole VPC, once a minute for
// as long as the Node lacks one). GC passes are told by a failing
// delete retried at each (deleteLoose). Before, every pass described.
func TestKubeSweepHeldBackDescribesNothing(t *testing.T) {
	w := newWorld(t)
	_, admin := kubeAdmin(t)
	ctx := context.Background()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "rc-sweep-noid", Labels: map[string]string{labelOS: "linux"}}}
	if err := admin.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Delete(context.Background(), node) })
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "DeleteNetworkInterface", Code: "InternalError"}}}); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{ClusterName: "test", VPCID: simtest.VPCID, GCInterval: 20 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))}, w.ec2)
	if err != nil {
		t.Fatal(err)
	}
	c.c, c.api = admin, admin
	c.reg.addLoose([]BranchENI{{ENIID: "eni-0000000000000abcd"}})
	gctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.runGC(gctx) }()
	waitFor(t, 30*time.Second, "5 GC passes", func() (bool, string) {
		// 3 attempts a delete (fastEC2)
		n := w.env.Sim.Stats().Errors["DeleteNetworkInterface"]["InternalError"]
		return n >= 15, fmt.Sprint(n)
	})
	cancel()
	<-done
	if n := w.env.Sim.Stats().Calls["DescribeNetworkInterfaces"]; n != 0 {
		t.Errorf("%d DescribeNetworkInterfaces calls in GC passes a Node without a providerID held the sweep back, want 0", n)
	}
}
