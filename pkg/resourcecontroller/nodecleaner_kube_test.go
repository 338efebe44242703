package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestKubeNodeTerminationCleansAvailableENIs: a Node with a branch pod is
// deleted, and EC2 still holds an available ipamd ENI tagged with its
// instance (made but never attached). Once the CNINode is being deleted,
// both the branch and that ENI must go, while the first deletes are
// refused the CNINode must wait on its finalizer, and ENIs that are not the
// node's (another instance's, another owner's) or are in use must stay.
func TestKubeNodeTerminationCleansAvailableENIs(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-term", inst1, 9)
	if _, err := h.createPod("p", "rc-term", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	branch := h.waitAnnotation("p")[0].ENIID
	ctx := context.Background()
	mk := func(instanceID string) string {
		t.Helper()
		e, err := w.ec2.CreateENI(ctx, awsutils.CreateENIRequest{InstanceID: instanceID, SubnetID: simtest.NodeSubnetID})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	stray := mk(inst1)         // the node's, available: deleted
	attached := mk(inst1)      // the node's, in use: kept
	otherInstance := mk(inst2) // not the node's: kept
	otherOwner := mk(inst1)    // not ours: kept
	if err := w.ec2.CreateTags(ctx, otherOwner, map[string]string{awsutils.TagENIOwner: "someone-else"}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.ec2.AttachENI(ctx, attached, inst1, 1, 0); err != nil {
		t.Fatal(err)
	}
	failures := metricValue(t, "node_termination_eni_cleanup_failures_total", nil)
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "DeleteNetworkInterface", Code: "InternalError"}}}); err != nil {
		t.Fatal(err)
	}
	if err := h.admin.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "rc-term"}}); err != nil {
		t.Fatal(err)
	}
	// What the garbage collector does for the Node's owned CNINode.
	if err := h.admin.Delete(ctx, &k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: "rc-term"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a refused cleanup counted", func() (bool, string) {
		n := metricValue(t, "node_termination_eni_cleanup_failures_total", nil)
		return n > failures, fmt.Sprint(n)
	})
	cn := &k8s.CNINode{}
	if err := h.admin.Get(ctx, client.ObjectKey{Name: "rc-term"}, cn); err != nil || !slices.Contains(cn.Finalizers, CNINodeFinalizer) {
		t.Fatalf("after a refused cleanup the CNINode must wait on its finalizer: %v %v", err, cn.Finalizers)
	}
	if err := w.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	// The CNINode waits until a later cleanup succeeds; then it goes.
	waitFor(t, 30*time.Second, "the deleted node's CNINode released", func() (bool, string) {
		cn := &k8s.CNINode{}
		err := h.admin.Get(ctx, client.ObjectKey{Name: "rc-term"}, cn)
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		ids := w.eniIDs()
		if !slices.Contains(ids, stray) && !slices.Contains(ids, branch) {
			return false, fmt.Sprint("ENIs gone, CNINode still there: ", cn.Finalizers)
		}
		if cn.DeletionTimestamp == nil || !slices.Contains(cn.Finalizers, CNINodeFinalizer) {
			t.Fatalf("CNINode released before the node's ENIs were deleted (finalizers %v); ENIs %v", cn.Finalizers, ids)
		}
		return false, fmt.Sprint(ids)
	})
	ids := w.eniIDs()
	for _, id := range []string{stray, branch} {
		if slices.Contains(ids, id) {
			t.Errorf("ENI %s of the deleted node still exists", id)
		}
	}
	for _, id := range []string{attached, otherInstance, otherOwner} {
		if !slices.Contains(ids, id) {
			t.Errorf("ENI %s was deleted; it is not an available ENI of the deleted node", id)
		}
	}
}

// TestKubeNodeTerminationCleanupTimesOut: a node cleanup that EC2 keeps
// waiting ends at NodeCleanTimeout, is counted as failed, keeps the
// CNINode's finalizer, and is done again once EC2 answers. EC2 holds the
// deletes until the test has checked the finalizer: a delete slowed by a
// fixed latency went through once that latency was over, and a test
// slower than it saw the CNINode released.
func TestKubeNodeTerminationCleanupTimesOut(t *testing.T) {
	w := newWorld(t)
	ec2, released := heldFront(t, w, nil)
	cfg := fastConfig()
	cfg.NodeCleanTimeout = 300 * time.Millisecond
	h := newHarness(t, ec2, cfg)
	h.addNode("rc-termslow", inst1, nil)
	ctx := context.Background()
	waitFor(t, 30*time.Second, "CNINode rc-termslow", func() (bool, string) {
		err := h.admin.Get(ctx, client.ObjectKey{Name: "rc-termslow"}, &k8s.CNINode{})
		return err == nil, fmt.Sprint(err)
	})
	stray, err := w.ec2.CreateENI(ctx, awsutils.CreateENIRequest{InstanceID: inst1, SubnetID: simtest.NodeSubnetID})
	if err != nil {
		t.Fatal(err)
	}
	failures := metricValue(t, "node_termination_eni_cleanup_failures_total", nil)
	if err := h.admin.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "rc-termslow"}}); err != nil {
		t.Fatal(err)
	}
	if err := h.admin.Delete(ctx, &k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: "rc-termslow"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "a timed-out cleanup counted", func() (bool, string) {
		n := metricValue(t, "node_termination_eni_cleanup_failures_total", nil)
		return n > failures, fmt.Sprint(n)
	})
	cn := &k8s.CNINode{}
	if err := h.admin.Get(ctx, client.ObjectKey{Name: "rc-termslow"}, cn); err != nil || !slices.Contains(cn.Finalizers, CNINodeFinalizer) {
		t.Fatalf("after a timed-out cleanup the CNINode must wait on its finalizer: %v %v", err, cn.Finalizers)
	}
	if !slices.Contains(w.eniIDs(), stray.ID) {
		t.Fatalf("the node's ENI %s was deleted by a cleanup that timed out", stray.ID)
	}
	released()
	waitFor(t, 30*time.Second, "the CNINode released and the node's ENI deleted", func() (bool, string) {
		err := h.admin.Get(ctx, client.ObjectKey{Name: "rc-termslow"}, &k8s.CNINode{})
		ids := w.eniIDs()
		return apierrors.IsNotFound(err) && !slices.Contains(ids, stray.ID), fmt.Sprint(err, ids)
	})
}
