package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestKubeSweepSparesRunningPodsOfRemadeNode: while the controller is
// down a Node is registered again for its live instance and its CNINode
// is made again without SecurityGroupsForPods, which ipamd never declares
// again (it does so only until a trunk is attached). The node then looks
// unmanaged for good.
// Once DeinitDelay is over the start-up sweep deletes the completed pod's
// branch, but the running pod's branch must stay until that pod is
// deleted. Before, the sweep deleted both.
func TestKubeSweepSparesRunningPodsOfRemadeNode(t *testing.T) {
	const live = "i-000000000000000c5" // no other test's Node names it
	w := newWorld(t, nodeSpec(live))
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const node = "rc-sweep-remade"
	h.addSGPNode(node, live, 9)
	for _, pod := range []string{"a", "done"} {
		if _, err := h.createPod(pod, node, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
	}
	a := h.waitAnnotation("a")[0].ENIID
	done := h.waitAnnotation("done")[0].ENIID
	h.stop()

	h.setPhase("done", corev1.PodSucceeded)
	h.removeNodeNow(node)
	h.remakeCNINode(h.addNode(node, live, nil), live)
	startController(t, h)
	waitFor(t, 30*time.Second, "the completed pod's branch swept", func() (bool, string) {
		ids := branchIDs(w.branches())
		// One background job deletes an instance's branches: once it
		// has let go of this one, it has let go of all.
		return !slices.Contains(ids, done) && !h.ctrl.deleting.has(done), fmt.Sprint(ids)
	})
	if ids := branchIDs(w.branches()); !slices.Contains(ids, a) || h.ctrl.deleting.has(a) {
		t.Fatalf("branches %v: running pod a's branch %s was deleted by the start-up sweep", ids, a)
	}
	h.deletePod("a")
	waitFor(t, 30*time.Second, "pod a's branch deleted once the pod is gone", func() (bool, string) {
		ids := branchIDs(w.branches())
		return !slices.Contains(ids, a), fmt.Sprint(ids)
	})
}

// setPhase sets the pod's status phase, as the kubelet does.
func (h *harness) setPhase(name string, phase corev1.PodPhase) {
	h.t.Helper()
	ctx := context.Background()
	var p corev1.Pod
	if err := h.admin.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: name}, &p); err != nil {
		h.t.Fatal(err)
	}
	p.Status.Phase = phase
	if err := h.admin.Status().Update(ctx, &p); err != nil {
		h.t.Fatal(err)
	}
}
