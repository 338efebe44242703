package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// TestKubeSweepSparesReRegisteredNode: while the controller is down a
// Node is registered again for its live instance (kubectl delete node; the
// kubelet registers it anew), and its CNINode, made again, does not carry
// SecurityGroupsForPods yet: ipamd declares it a moment later. The new
// Node advertises no pod-eni either. The start-up sweep sees it at that
// moment: the running pod's branch must survive it, while a gone
// instance's branch is swept. Before, the node counted as unmanaged for
// good and the running pod's branch was deleted.
func TestKubeSweepSparesReRegisteredNode(t *testing.T) {
	// Instances no other test's Node names (the API server is shared).
	sweepReRegistered(t, "rc-sweep-rereg", "i-000000000000000c1", "i-000000000000000c2", nil)
}

// TestKubeSweepSparesReRegisteredNodeClockAhead is
// TestKubeSweepSparesReRegisteredNode with the controller's clock ten
// minutes ahead of the API server's: how long the controller has seen the
// Node and CNINode counts, not their creationTimestamps. Before, they
// looked ten minutes old at once and the running pod's branch was deleted.
func TestKubeSweepSparesReRegisteredNodeClockAhead(t *testing.T) {
	sweepReRegistered(t, "rc-sweep-skew", "i-000000000000000c3", "i-000000000000000c4", func() time.Time {
		return time.Now().Add(10 * time.Minute)
	})
}

// sweepReRegistered runs the re-registered Node's start-up sweep for node
// of instance live, node+"-gone" of instance gone, the controller's clock
// being clock (nil: time.Now).
func sweepReRegistered(t *testing.T, node, live, gone string, clock func() time.Time) {
	w := newWorld(t, nodeSpec(live), nodeSpec(gone))
	cfg := fastConfig()
	cfg.DeinitDelay = time.Minute // how young a Node or CNINode proves nothing
	cfg.clock = clock
	h := newHarness(t, w.ec2, cfg)
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	goneNode := node + "-gone"
	h.addSGPNode(node, live, 9)
	h.addSGPNode(goneNode, gone, 9)
	for pod, n := range map[string]string{"a": node, "g": goneNode} {
		if _, err := h.createPod(pod, n, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
	}
	a := h.waitAnnotation("a")
	g := h.waitAnnotation("g")
	h.stop()

	h.removeNodeNow(node)
	h.removeNodeNow(goneNode)
	h.remakeCNINode(h.addNode(node, live, nil), live)

	startController(t, h)
	waitFor(t, 30*time.Second, "the gone instance's branch swept", func() (bool, string) {
		left := existing(w, []string{g[0].ENIID})
		return len(left) == 0, fmt.Sprint(left)
	})
	h.declareSGP(node)
	h.waitCapacity(node, 9)
	if ids := branchIDs(w.branches()); !slices.Contains(ids, a[0].ENIID) {
		t.Fatalf("branches %v: running pod a's branch %s was deleted by the start-up sweep", ids, a[0].ENIID)
	}
	if held := h.ctrl.reg.held(node, h.podUID("a")); !slices.ContainsFunc(held, func(b BranchENI) bool { return b.ENIID == a[0].ENIID }) {
		t.Errorf("pod a holds %v, want its branch %s", held, a[0].ENIID)
	}
}

// remakeCNINode makes the CNINode of Node n of instanceID as the
// controller does, without features: the one made for a Node registered
// again.
func (h *harness) remakeCNINode(n *corev1.Node, instanceID string) {
	h.t.Helper()
	yes := true
	cn := &k8s.CNINode{
		ObjectMeta: metav1.ObjectMeta{
			Name: n.Name, Labels: map[string]string{labelOS: "linux"}, Finalizers: []string{CNINodeFinalizer},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: n.Name, UID: n.UID, Controller: &yes, BlockOwnerDeletion: &yes}},
		},
		Spec: k8s.CNINodeSpec{Tags: map[string]string{awsutils.TagClusterName: "test", awsutils.TagInstanceID: instanceID}},
	}
	if err := h.admin.Create(context.Background(), cn); err != nil {
		h.t.Fatal(err)
	}
}

// removeNodeNow deletes a Node and its CNINode at once, finalizer
// dropped, as when the Node's garbage collection and cleanup ran while no
// controller did.
func (h *harness) removeNodeNow(name string) {
	h.t.Helper()
	ctx := context.Background()
	if err := h.admin.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		h.t.Fatal(err)
	}
	cn := &k8s.CNINode{}
	if err := h.admin.Get(ctx, client.ObjectKey{Name: name}, cn); err != nil {
		h.t.Fatal(err)
	}
	orig := cn.DeepCopy()
	cn.Finalizers = nil
	if err := h.admin.Patch(ctx, cn, client.MergeFrom(orig)); err != nil {
		h.t.Fatal(err)
	}
	if err := h.admin.Delete(ctx, cn); err != nil {
		h.t.Fatal(err)
	}
	waitFor(h.t, 30*time.Second, "CNINode "+name+" gone", func() (bool, string) {
		err := h.admin.Get(ctx, client.ObjectKey{Name: name}, &k8s.CNINode{})
		return err != nil, "still there"
	})
}

// podUID reads the pod's uid.
func (h *harness) podUID(name string) types.UID {
	h.t.Helper()
	var p corev1.Pod
	if err := h.admin.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: name}, &p); err != nil {
		h.t.Fatal(err)
	}
	return p.UID
}
