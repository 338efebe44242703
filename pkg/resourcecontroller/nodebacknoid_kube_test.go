package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// counterValue reads a counter's current value.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestKubeNodeBackWithoutProviderIDStopsBranchDeletes: the Node registers
// again for its instance while its branches are being deleted after the
// delay, but without its providerID yet (a kubelet with an external cloud
// provider: the cloud controller manager sets it a moment later). The
// deletes stop there, as for a Node back with its providerID, and once the
// providerID is set the running pods' branches left are adopted by the
// node's trunk state. Before, a Node without a providerID counted as not
// back, and every branch of the list was deleted under its running pods.
// EC2 holds the second delete until the Node is back: slowed by a fixed
// 2 s, a test slower than that to create the Node saw every branch deleted.
func TestKubeNodeBackWithoutProviderIDStopsBranchDeletes(t *testing.T) {
	w := newWorld(t)
	ec2, released := heldAfterFirst(t, w)
	h := newHarness(t, ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const node = "rc-noid"
	h.addSGPNode(node, inst1, 9)
	var all []string
	for i := range 3 {
		name := fmt.Sprintf("p%d", i)
		if _, err := h.createPod(name, node, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
		all = append(all, h.waitAnnotation(name)[0].ENIID)
	}
	h.deleteNode(node)
	waitFor(t, 30*time.Second, "the first branch deleted", func() (bool, string) {
		ids := branchIDs(w.branches())
		return len(ids) < len(all), fmt.Sprint(ids)
	})
	ctx := context.Background()
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node, Labels: map[string]string{"kubernetes.io/os": "linux", "rc-test": h.ns}}}
	if err := h.admin.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
	released()
	// The deletes are over once the node-termination cleaner has either
	// released the CNINode (it found the Node not back) or failed (it
	// could not tell): only then is the providerID set.
	failed := counterValue(t, metricNodeCleanFailures)
	waitFor(t, 60*time.Second, "the gone node's cleanup over", func() (bool, string) {
		err := h.admin.Get(ctx, client.ObjectKey{Name: node}, &k8s.CNINode{})
		return apierrors.IsNotFound(err) || counterValue(t, metricNodeCleanFailures) > failed, fmt.Sprint(err)
	})
	orig := n.DeepCopy()
	n.Spec.ProviderID = "aws:///us-west-2a/" + inst1
	if err := h.admin.Patch(ctx, n, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	// The node's ipamd declares SGP again on a CNINode made anew.
	waitFor(t, 30*time.Second, "the node's CNINode", func() (bool, string) {
		cn := &k8s.CNINode{}
		err := h.admin.Get(ctx, client.ObjectKey{Name: node}, cn)
		if err != nil || cn.DeletionTimestamp != nil {
			return false, fmt.Sprint(err)
		}
		if !slices.ContainsFunc(cn.Spec.Features, func(f k8s.CNINodeFeature) bool { return f.Name == k8s.FeatureSecurityGroupsForPods }) {
			h.declareSGP(node)
		}
		return true, ""
	})
	h.settledBack(node)
	left := branchIDs(w.branches())
	if len(left) == 0 {
		t.Fatalf("every branch of the node was deleted though it came back (without a providerID yet) during the deletes (had %v)", all)
	}
	for i, id := range all {
		if !slices.Contains(left, id) {
			continue
		}
		var p corev1.Pod
		if err := h.admin.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: fmt.Sprintf("p%d", i)}, &p); err != nil {
			t.Fatal(err)
		}
		if !h.ctrl.reg.holds(node, p.UID) {
			t.Errorf("pod p%d's branch %s was kept but is not held by the node's trunk state", i, id)
		}
	}
}
