package resourcecontroller

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestKubeUnsupportedNodeUpdatesCallNoEC2: with ENABLE_POD_ENI set on the
// whole DaemonSet, every node of a type that cannot trunk is an SGP node.
// Its type does not change while it lives: an update of the Node (status
// reports, labels) must not describe the instance again, or a cluster of
// such nodes spends the account's EC2 request budget, shared with every
// ipamd, on answers it already has.
func TestKubeUnsupportedNodeUpdatesCallNoEC2(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	node := "rc-t3-" + h.ns
	h.addNode(node, inst5, map[string]string{LabelHasTrunk: "true"})
	h.waitNodeEvents(node, ReasonUnsupported, 1)
	reconciles := func() float64 {
		n := 0.0
		for _, r := range []string{"success", "error", "requeue", "requeue_after"} {
			n += metricValue(t, "controller_runtime_reconcile_total", map[string]string{"controller": "sgp-node", "result": r})
		}
		return n
	}
	// The first reconciles (the CNINode made, the event) may still run.
	waitFor(t, 30*time.Second, "the node's first reconciles to settle", func() (bool, string) {
		before := reconciles()
		var n corev1.Node
		err := h.admin.Get(context.Background(), client.ObjectKey{Name: node}, &n)
		return err == nil && reconciles() == before && before > 0, fmt.Sprint(before, err)
	})
	calls := w.env.Sim.Stats().Calls["DescribeInstances"]
	base := reconciles()
	const updates = 5
	for i := range updates {
		var n corev1.Node
		if err := h.admin.Get(context.Background(), client.ObjectKey{Name: node}, &n); err != nil {
			t.Fatal(err)
		}
		n.Labels["touch"] = fmt.Sprint(i)
		if err := h.admin.Update(context.Background(), &n); err != nil {
			t.Fatal(err)
		}
		want := base + float64(i+1)
		waitFor(t, 30*time.Second, fmt.Sprintf("update %d reconciled", i), func() (bool, string) {
			got := reconciles()
			return got >= want, fmt.Sprintf("%v of %v reconciles", got, want)
		})
	}
	if n := w.env.Sim.Stats().Calls["DescribeInstances"] - calls; n != 0 {
		t.Errorf("%d node updates described the instance %d more times; want 0", updates, n)
	}
}
