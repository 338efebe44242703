package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"sync"
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
// when 0) whose EC2 holds the old branches' deletes (see oldDeletes), and
// the "db" policy selecting role=db-client pods.
func reusedWorld(t *testing.T, deinit time.Duration, insts ...string) (*world, *harness, *oldDeletes) {
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
	held := &oldDeletes{}
	ec2, released := heldFront(t, w, held.holds)
	held.release = released
	h := newHarness(t, ec2, cfg)
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	return w, h, held
}

// oldDeletes holds at EC2 every delete until the old instance's branches
// are named, then theirs only, until release: a fixed latency instead let
// a slow run see them deleted before its checks.
type oldDeletes struct {
	mu      sync.Mutex
	ids     []string
	named   bool
	release func()
}

func (o *oldDeletes) holds(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return !o.named || slices.Contains(o.ids, id)
}

func (o *oldDeletes) name(ids []string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ids, o.named = ids, true
}

// reusedName gives node, on oldInst, n branch pods, has held hold their
// deletes, deletes the Node (and its CNINode
// unless reuseNodeOnly, as the Node's garbage collection does; the
// finalizer holds the CNINode) and registers the name again for newInst
// with a new branch pod.
// It returns the old branches and when the name came back.
func reusedName(t *testing.T, h *harness, w *world, held *oldDeletes, node, oldInst, newInst string, n int, how reuse) []string {
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
	held.name(old)
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
	h.addNode(node, newInst, map[string]string{LabelHasTrunk: "true"})
	if _, err := h.createPod("new", node, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	return old
}

// newPodBeforeOldDeletes checks that the new instance's pod got its branch
// while the old instance's branch deletes are held, releases them and
// waits for those branches to go.
func newPodBeforeOldDeletes(t *testing.T, h *harness, w *world, held *oldDeletes, old []string) {
	t.Helper()
	waitFor(t, 30*time.Second, "the new instance's pod's branch while the old ones' deletes are held", func() (bool, string) {
		return h.annotated("new"), "not annotated"
	})
	if left := existing(w, old); len(left) != len(old) {
		t.Errorf("old branches left %v of %v: a delete went through while EC2 held it", left, old)
	}
	held.release()
	waitFor(t, 60*time.Second, "the old instance's branches deleted", func() (bool, string) {
		left := existing(w, old)
		return len(left) == 0, fmt.Sprint(left)
	})
}

// TestKubeNodeNameReusedCNINodeGoingDoesNotWaitForOldDeletes: a Node
// whose six pods hold branches is deleted with its CNINode, and another
// instance registers under its name within DeinitDelay, while EC2 holds
// the old branches' deletes. The new instance's pod must get its branch
// while they are held, and those must all be deleted once EC2 answers. Before, the new node's CNINode
// waited for the old one, whose finalizer the old instance's cleanup
// held until it had deleted the six one by one (30 s), the background
// job deleting the same six meanwhile.
func TestKubeNodeNameReusedCNINodeGoingDoesNotWaitForOldDeletes(t *testing.T) {
	const inst6 = "i-00000000000000006"
	// DeinitDelay 1 min: the old state is still held when the name comes back.
	w, h, held := reusedWorld(t, time.Minute, inst6)
	old := reusedName(t, h, w, held, "rc-reused-cn", inst1, inst6, 6, reuseWithCNINode)
	newPodBeforeOldDeletes(t, h, w, held, old)
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
	w, h, held := reusedWorld(t, time.Minute, oldInst, newInst)
	old := reusedName(t, h, w, held, "rc-reused-restart", oldInst, newInst, 4, reuseWithCNINode)
	waitFor(t, 30*time.Second, "the new instance's pod's branch", func() (bool, string) {
		return h.annotated("new"), "not annotated"
	})
	h.stop()
	left := existing(w, old)
	if len(left) == 0 {
		t.Fatal("every old branch was deleted before the stop; nothing to test")
	}
	t.Logf("stopped with %d of %d old branches left", len(left), len(old))
	held.release()
	startController(t, h)
	waitFor(t, 30*time.Second, "the old instance's branches deleted by the next controller", func() (bool, string) {
		left := existing(w, old)
		return len(left) == 0, fmt.Sprint(left)
	})
}

// TestKubeNodeNameReusedDuringGoneDeletesDoesNotWait: as above, but the
// name comes back after DeinitDelay, while the gone node's own background
// job is deleting its branches one by one and EC2 holds the delete under
// way. The new instance's pod must get its branch while the old deletes
// are held: they are the old instance's. Before, the new Node's reconcile
// waited for the gone job, which saw the name taken only once EC2 had
// answered its delete in flight.
func TestKubeNodeNameReusedDuringGoneDeletesDoesNotWait(t *testing.T) {
	const oldInst, newInst = "i-000000000000000b1", "i-000000000000000b2"
	// fastConfig's DeinitDelay (300 ms): the gone job runs when the name
	// comes back.
	w, h, held := reusedWorld(t, 0, oldInst, newInst)
	old := reusedName(t, h, w, held, "rc-reused-gone", oldInst, newInst, 6, reuseDuringGoneJob)
	newPodBeforeOldDeletes(t, h, w, held, old)
}

// TestKubeNodeNameReusedDuringUnmanageDeletesDoesNotWait: a node whose
// three pods hold branches loses SGP, and while the job deleting its
// branches waits for EC2 to answer the delete under way, the Node is
// deleted with its CNINode and another instance registers the name. The
// new instance's pod must get its branch while the old deletes are held,
// and the old branches must all be deleted once EC2 answers. Before, the
// new Node's reconcile waited for the job, which could not be cut short:
// until EC2's client gave up each old delete in turn (30 s each here).
func TestKubeNodeNameReusedDuringUnmanageDeletesDoesNotWait(t *testing.T) {
	const oldInst, newInst = "i-000000000000000c1", "i-000000000000000c2"
	const node = "rc-reused-unmanage"
	w, h, held := reusedWorld(t, 0, oldInst, newInst)
	h.addSGPNode(node, oldInst, 9)
	var old []string
	for i := range 3 {
		pod := fmt.Sprintf("held-%d", i)
		if _, err := h.createPod(pod, node, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
		old = append(old, h.waitAnnotation(pod)[0].ENIID)
	}
	held.name(old)
	h.dropSGPFeature(node)
	waitFor(t, 30*time.Second, "the branch deletes of the node that lost SGP running", func() (bool, string) {
		return h.ctrl.gone.running(node), "not running"
	})
	h.deleteNode(node)
	h.addNode(node, newInst, map[string]string{LabelHasTrunk: "true"})
	if _, err := h.createPod("new", node, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	newPodBeforeOldDeletes(t, h, w, held, old)
}
