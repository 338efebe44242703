package resourcecontroller

import (
	"context"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// TestKubeHarnessCleanupLeavesNoCNINode: a test whose node is gone while
// its controller waits DeinitDelay ends with the node's CNINode held by the
// finalizer of a controller that no longer runs. The harness's cleanup
// must not leave it in the shared API server: the next tests' controllers
// each ran that gone node's cleanup in their own VPC, where its instance
// id names one of their nodes (seen: TestKubeGoneNodeCleanupWaitingForASlotWaitsNoNewDelay's
// single slot taken, and its node's ENI deleted, by rc-twice's).
func TestKubeHarnessCleanupLeavesNoCNINode(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.DeinitDelay = time.Hour // the test ends before the node's cleanup
	h := newHarness(t, w.ec2, cfg)
	const node = "rc-left-behind"
	h.addSGPNode(node, inst1, 9)
	h.deleteNode(node)
	h.stop()
	h.cleanup()
	err := h.admin.Get(context.Background(), client.ObjectKey{Name: node}, &k8s.CNINode{})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("after the harness's cleanup CNINode %s is still in the API server (%v)", node, err)
	}
}
