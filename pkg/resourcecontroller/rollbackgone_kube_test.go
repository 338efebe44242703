package resourcecontroller

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// podWorkers is the pod controller's MaxConcurrentReconciles (setup.go).
const podWorkers = 8

// TestKubeGoneTrunkRollbacksDoNotHoldPodWorkers: a node goes while EC2
// holds the branch creates of as many pods as there are pod workers. Once
// the node's cleanup is done the creates go through, each allocation finds
// its trunk state gone and its branch must be deleted, and EC2 holds those
// deletes. A pod on another node must still get its branch meanwhile, and
// the gone node's branches must go once EC2 answers. Before, each delete
// ran in its pod's worker for up to a minute: with every worker taken,
// every other pod of the cluster waited.
func TestKubeGoneTrunkRollbacksDoNotHoldPodWorkers(t *testing.T) {
	w := newWorld(t)
	var holdCreates atomic.Bool
	deletes, releaseDeletes := holdCalls(w.env.Sim.EC2Handler(), "DeleteNetworkInterface", nil)
	creates, releaseCreates := holdCalls(deletes, "CreateNetworkInterface", func(q url.Values) bool {
		return holdCreates.Load() && q.Get("Description") == awsutils.BranchDescription
	})
	h := newHarness(t, serveEC2(t, w, creates, releaseCreates, releaseDeletes), fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const gone, live = "rc-rbgone", "rc-rblive"
	h.addSGPNode(gone, inst1, 9)
	h.addSGPNode(live, inst2, 9)
	holdCreates.Store(true)
	for i := range podWorkers {
		if _, err := h.createPod(fmt.Sprintf("p%d", i), gone, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "every pod worker's branch create held at EC2", func() (bool, string) {
		n := creates.parked.Load()
		return n == podWorkers, fmt.Sprint(n)
	})
	holdCreates.Store(false)
	ctx := context.Background()
	if err := h.admin.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: gone}}); err != nil {
		t.Fatal(err)
	}
	if err := h.admin.Delete(ctx, &k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: gone}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the deleted node's CNINode released", func() (bool, string) {
		cn := &k8s.CNINode{}
		err := h.admin.Get(ctx, client.ObjectKey{Name: gone}, cn)
		return apierrors.IsNotFound(err), fmt.Sprint(err, cn.Finalizers)
	})
	releaseCreates()
	waitFor(t, 30*time.Second, "the gone node's branch deletes held at EC2", func() (bool, string) {
		n := deletes.parked.Load()
		return n == podWorkers, fmt.Sprint(n)
	})
	if _, err := h.createPod("live", live, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	// A pod gets its branch in well under a second here; EC2's client
	// gives up a held call after 30 s.
	waitFor(t, 10*time.Second, "the live node's pod's branch while the gone node's deletes are held", func() (bool, string) {
		return h.annotated("live"), "not annotated"
	})
	kept := h.waitAnnotation("live")[0].ENIID
	made := branchIDs(w.branches())
	releaseDeletes()
	waitFor(t, 30*time.Second, "the gone node's branches deleted", func() (bool, string) {
		left := existing(w, made)
		return slices.Equal(left, []string{kept}), fmt.Sprint(left)
	})
}
