package resourcecontroller

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestKubeNodeDeletedWhileControllerDownLeavesNoBranch: a node with a
// branch pod is deleted while the controller is down (its CNINode waits on
// the finalizer). The restarted controller never had the node's trunk in
// memory; it must still delete the node's branch ENIs before it lets the
// CNINode go, or nothing ever deletes them.
func TestKubeNodeDeletedWhileControllerDownLeavesNoBranch(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-gone", inst1, 9)
	if _, err := h.createPod("p", "rc-gone", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	h.waitAnnotation("p")
	h.stop()
	ctx := context.Background()
	if err := h.admin.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "rc-gone"}}); err != nil {
		t.Fatal(err)
	}
	// What the garbage collector does for the Node's owned CNINode (the
	// test API server runs no controller manager).
	if err := h.admin.Delete(ctx, &k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: "rc-gone"}}); err != nil {
		t.Fatal(err)
	}
	startController(t, h)
	waitFor(t, 30*time.Second, "the deleted node's CNINode released", func() (bool, string) {
		cn := &k8s.CNINode{}
		err := h.admin.Get(ctx, client.ObjectKey{Name: "rc-gone"}, cn)
		return apierrors.IsNotFound(err), fmt.Sprint(err, cn.Finalizers)
	})
	waitFor(t, 30*time.Second, "the deleted node's branch ENIs deleted", func() (bool, string) {
		ids := branchIDs(w.branches())
		return len(ids) == 0, fmt.Sprint(ids)
	})
}

// holdBranchCreates fronts w's EC2 with a heldCalls holding every branch
// ENI create (trunk creates pass); it returns the hold, a controller's
// client of it and the release (also run at the test's end).
func holdBranchCreates(t *testing.T, w *world) (*heldCalls, *awsutils.EC2, func()) {
	t.Helper()
	held, release := holdCalls(w.env.Sim.EC2Handler(), "CreateNetworkInterface", func(q url.Values) bool {
		return q.Get("Description") == awsutils.BranchDescription
	})
	return held, serveEC2(t, w, held, release), release
}

// deleteNodeMidCreate creates a branch pod on node, whose create EC2
// holds, deletes the Node and its CNINode (the Node's garbage collection)
// and waits for the node's cleanup to have let the CNINode go, with the
// create still held: the window in which the branch is made after the
// node's cleanup found none.
func deleteNodeMidCreate(t *testing.T, h *harness, w *world, held *heldCalls, node string) {
	t.Helper()
	if _, err := h.createPod("p", node, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the pod's branch create held at EC2", func() (bool, string) {
		n := held.parked.Load()
		return n == 1, fmt.Sprint(n)
	})
	ctx := context.Background()
	if err := h.admin.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}); err != nil {
		t.Fatal(err)
	}
	if err := h.admin.Delete(ctx, &k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: node}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the deleted node's CNINode released", func() (bool, string) {
		cn := &k8s.CNINode{}
		err := h.admin.Get(ctx, client.ObjectKey{Name: node}, cn)
		return apierrors.IsNotFound(err), fmt.Sprint(err, cn.Finalizers)
	})
	if ids := branchIDs(w.branches()); len(ids) != 0 || held.parked.Load() != 1 {
		t.Fatalf("the branch create was not held through the node's cleanup: branches %v, held %d", ids, held.parked.Load())
	}
}

// TestKubeNodeDeletedMidAllocationLeavesNoBranch: the node goes (a spot
// interruption) while its pod's branch is being created. The node's
// cleanup finds no branch yet; the branch made afterwards must be deleted
// by the allocation itself, or nothing ever deletes it, and the pod must
// not be annotated with it. EC2 holds the create until the cleanup is
// done (a fixed latency let a slow run miss the window, and the test
// skipped).
func TestKubeNodeDeletedMidAllocationLeavesNoBranch(t *testing.T) {
	w := newWorld(t)
	held, ec2, release := holdBranchCreates(t, w)
	h := newHarness(t, ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-midway", inst1, 9)
	assocs := w.env.Sim.Stats().Calls["AssociateTrunkInterface"]
	deleteNodeMidCreate(t, h, w, held, "rc-midway")
	release()
	waitFor(t, 30*time.Second, "the branch made after the node went deleted", func() (bool, string) {
		ids := branchIDs(w.branches())
		n := w.env.Sim.Stats().Calls["AssociateTrunkInterface"]
		return n > assocs && len(ids) == 0, fmt.Sprintf("associations %d, branches %v", n-assocs, ids)
	})
	var p corev1.Pod
	if err := h.admin.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "p"}, &p); err != nil {
		t.Fatal(err)
	}
	if raw := p.Annotations[PodENIAnnotation]; raw != "" {
		t.Errorf("the pod is annotated with a deleted branch: %s", raw)
	}
}

// TestKubeNodeDeletedMidAllocationFailedRollbackRetried: as above, but the
// allocation's own delete of the branch fails too. The node's delete queue
// and GC are gone with its trunk state, and its cleanup has run: the
// branch must still be deleted once EC2 lets it, not leaked for ever.
func TestKubeNodeDeletedMidAllocationFailedRollbackRetried(t *testing.T) {
	w := newWorld(t)
	held, ec2, release := holdBranchCreates(t, w)
	h := newHarness(t, ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-midfail", inst1, 9)
	if err := w.env.Sim.SetFaults(vpcsim.Faults{
		Errors: []vpcsim.ErrorRule{{Action: "DeleteNetworkInterface", Code: "InternalError", Count: 3}}, // every attempt of the rollback's delete
	}); err != nil {
		t.Fatal(err)
	}
	deleteNodeMidCreate(t, h, w, held, "rc-midfail")
	release()
	waitFor(t, 30*time.Second, "the rollback's delete refused", func() (bool, string) {
		n := w.env.Sim.Stats().Errors["DeleteNetworkInterface"]["InternalError"]
		return n >= 3, fmt.Sprintf("%d refused deletes, branches %v", n, branchIDs(w.branches()))
	})
	waitFor(t, 30*time.Second, "the branch whose rollback failed deleted", func() (bool, string) {
		ids := branchIDs(w.branches())
		return len(ids) == 0, fmt.Sprint(ids)
	})
}
