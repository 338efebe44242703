package resourcecontroller

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// reuse is when reusedName registers the name again.
type reuse int

const (
	reuseNodeOnly      reuse = iota // the Node deleted, its CNINode not yet
	reuseWithCNINode                // both deleted (the Node's garbage collection)
	reuseDuringGoneJob              // both deleted, and the gone node's branch deletes running
)

// reusedWorld is the world of a reused-name test: node instances insts
// besides inst1–inst5, a controller with DeinitDelay deinit (fastConfig's
// when 0), and the "db" policy selecting role=db-client pods.
func reusedWorld(t *testing.T, deinit time.Duration, insts ...string) (*world, *harness) {
	t.Helper()
	specs := make([]vpcsim.InstanceSpec, 0, len(insts))
	for _, id := range insts {
		specs = append(specs, nodeSpec(id))
	}
	w := newWorld(t, specs...)
	cfg := fastConfig()
	if deinit > 0 {
		cfg.DeinitDelay = deinit
	}
	h := newHarness(t, w.ec2, cfg)
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	return w, h
}

// reusedName gives node, on oldInst, n branch pods, makes EC2 take
// slowDelete per DeleteNetworkInterface, deletes the Node (and its CNINode
// unless reuseNodeOnly, as the Node's garbage collection does; the
// finalizer holds the CNINode) and registers the name again for newInst
// with a new branch pod.
// It returns the old branches and when the name came back.
func reusedName(t *testing.T, h *harness, w *world, node, oldInst, newInst string, n int, how reuse) ([]string, time.Time) {
	t.Helper()
	h.addSGPNode(node, oldInst, 9)
	var old []string
	for i := range n {
		pod := fmt.Sprintf("held-%d", i)
		if _, err := h.createPod(pod, node, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
		old = append(old, h.waitAnnotation(pod)[0].ENIID)
	}
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{"DeleteNetworkInterface": vpcsim.Duration(slowDelete)}}); err != nil {
		t.Fatal(err)
	}
	if how != reuseNodeOnly {
		h.deleteNode(node)
	} else if err := h.admin.Delete(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the Node seen gone", func() (bool, string) {
		info, ok := h.ctrl.reg.info(node)
		return !ok || info.Gone, fmt.Sprint(ok)
	})
	if how == reuseDuringGoneJob {
		waitFor(t, 30*time.Second, "the gone node's branch deletes running", func() (bool, string) {
			return h.ctrl.gone.running(node), "not running"
		})
	}
	start := time.Now()
	h.addNode(node, newInst, map[string]string{LabelHasTrunk: "true"})
	if _, err := h.createPod("new", node, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	return old, start
}

// newPodBeforeOldDeletes checks that the new instance's pod got its branch
// before half of the old instance's branches were deleted, and waits for
// all of those to go.
func newPodBeforeOldDeletes(t *testing.T, h *harness, w *world, old []string, start time.Time) {
	t.Helper()
	waitFor(t, 20*slowDelete, "the new instance's pod's branch", func() (bool, string) {
		return h.annotated("new"), "not annotated"
	})
	left := existing(w, old)
	t.Logf("the new instance's pod got its branch %s after the Node came back; old branches left: %d of %d", time.Since(start), len(left), len(old))
	if len(left) < len(old)/2 {
		t.Errorf("the new instance's pod got its branch only once %d of the old instance's %d branches were deleted, want before half of them", len(old)-len(left), len(old))
	}
	waitFor(t, 20*slowDelete, "the old instance's branches deleted", func() (bool, string) {
		left := existing(w, old)
		return len(left) == 0, fmt.Sprint(left)
	})
}

// TestKubeNodeNameReusedCNINodeGoingDoesNotWaitForOldDeletes: a Node
// whose six pods hold branches is deleted with its CNINode, and another
// instance registers under its name within DeinitDelay, while EC2 takes
// 5 s per DeleteNetworkInterface. The new instance's pod must get its
// branch before the old instance's six branches are half deleted, and
// those must all be deleted in the end. Before, the new node's CNINode
// waited for the old one, whose finalizer the old instance's cleanup
// held until it had deleted the six one by one (30 s), the background
// job deleting the same six meanwhile.
func TestKubeNodeNameReusedCNINodeGoingDoesNotWaitForOldDeletes(t *testing.T) {
	const inst6 = "i-00000000000000006"
	// DeinitDelay 1 min: the old state is still held when the name comes back.
	w, h := reusedWorld(t, time.Minute, inst6)
	old, start := reusedName(t, h, w, "rc-reused-cn", inst1, inst6, 6, reuseWithCNINode)
	newPodBeforeOldDeletes(t, h, w, old, start)
}

// TestKubeNodeNameReusedOldBranchesDeletedAfterARestart: as above with
// four branches, and the controller stops once the new pod has its branch
// (the old CNINode is gone) while the old branches are being deleted. The
// next controller must delete those left: no Node, CNINode or trunk state
// names their instance any more.
func TestKubeNodeNameReusedOldBranchesDeletedAfterARestart(t *testing.T) {
	// Instances no other test's Node names: the API server is shared, and
	// a Node naming the old instance rightly keeps its branches.
	const oldInst, newInst = "i-000000000000000a1", "i-000000000000000a2"
	w, h := reusedWorld(t, time.Minute, oldInst, newInst)
	old, _ := reusedName(t, h, w, "rc-reused-restart", oldInst, newInst, 4, reuseWithCNINode)
	waitFor(t, 20*slowDelete, "the new instance's pod's branch", func() (bool, string) {
		return h.annotated("new"), "not annotated"
	})
	h.stop()
	left := existing(w, old)
	if len(left) == 0 {
		t.Fatal("every old branch was deleted before the stop; nothing to test")
	}
	t.Logf("stopped with %d of %d old branches left", len(left), len(old))
	if err := w.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	startController(t, h)
	waitFor(t, 30*time.Second, "the old instance's branches deleted by the next controller", func() (bool, string) {
		left := existing(w, old)
		return len(left) == 0, fmt.Sprint(left)
	})
}

// TestKubeNodeNameReusedDuringGoneDeletesDoesNotWait: as above, but the
// name comes back after DeinitDelay, while the gone node's own background
// job is deleting its branches one by one. The new instance's pod must
// not wait for that job either.
func TestKubeNodeNameReusedDuringGoneDeletesDoesNotWait(t *testing.T) {
	const oldInst, newInst = "i-000000000000000b1", "i-000000000000000b2"
	// fastConfig's DeinitDelay (300 ms): the gone job runs when the name
	// comes back.
	w, h := reusedWorld(t, 0, oldInst, newInst)
	old, start := reusedName(t, h, w, "rc-reused-gone", oldInst, newInst, 6, reuseDuringGoneJob)
	newPodBeforeOldDeletes(t, h, w, old, start)
}
