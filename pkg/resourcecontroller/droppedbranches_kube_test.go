package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestKubeTrunkGoneSlowDeletesDoNotHoldPods: a node's trunk ENI is
// deleted outside the controller while six pods hold branches on it, and
// EC2 holds every DeleteNetworkInterface. A new pod of that node and one
// of another node must get their branches while the old trunk's six
// branch deletes are held, and those must all be deleted once EC2 answers.
// Before, the pod worker that found the trunk gone deleted the six
// branches one by one before the node was reconciled for a new trunk, so
// the node's new pods waited for all of them. Deletes slowed by a fixed
// 5 s each instead of held let a test slower than 15 s to see the pods
// annotated find half deleted and fail wrongly.
func TestKubeTrunkGoneSlowDeletesDoNotHoldPods(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	var old []string
	// Every delete until the old branches are known, then only theirs: a
	// new pod's allocation that finds the trunk gone rolls its own branch
	// back first.
	ec2, released := heldFront(t, w, func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		return old == nil || slices.Contains(old, id)
	})
	h := newHarness(t, ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const node, other = "rc-gone-slow", "rc-gone-slow-other"
	h.addSGPNode(node, inst1, 9)
	h.addSGPNode(other, inst2, 9)
	ids := trunkGoneWithBranches(t, h, w, node, inst1, 6)
	mu.Lock()
	old = ids
	mu.Unlock()
	for _, p := range []struct{ name, node string }{{"new", node}, {"other", other}} {
		if _, err := h.createPod(p.name, p.node, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "the new pods' branches while the old ones' deletes are held", func() (bool, string) {
		var missing []string
		for _, name := range []string{"new", "other"} {
			if !h.annotated(name) {
				missing = append(missing, name)
			}
		}
		return len(missing) == 0, fmt.Sprint("not annotated: ", missing)
	})
	if left := existing(w, old); len(left) != len(old) {
		t.Fatalf("old branches left %v of %v: a delete went through while EC2 held it", left, old)
	}
	released()
	waitFor(t, 30*time.Second, "the old trunk's branches deleted", func() (bool, string) {
		left := existing(w, old)
		return len(left) == 0, fmt.Sprint(left)
	})
}

// trunkGoneWithBranches gives node n pods with a branch each, then
// deletes the node's trunk outside the controller (disassociating the
// branches first, as EC2 requires), and returns the branch ids.
func trunkGoneWithBranches(t *testing.T, h *harness, w *world, node, instanceID string, n int) []string {
	t.Helper()
	var ids, assocs []string
	for i := range n {
		pod := fmt.Sprintf("held-%d", i)
		if _, err := h.createPod(pod, node, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
		b := h.waitAnnotation(pod)[0]
		ids, assocs = append(ids, b.ENIID), append(assocs, b.AssociationID)
	}
	ctx := context.Background()
	for _, a := range assocs {
		if err := w.ec2.DisassociateBranch(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	var trunk vpcsim.ENIView
	for _, tr := range w.trunks() {
		if tr.Attachment != nil && tr.Attachment.InstanceID == instanceID {
			trunk = tr
		}
	}
	if trunk.ID == "" {
		t.Fatalf("no trunk attached to %s", instanceID)
	}
	if err := w.ec2.DetachENI(ctx, trunk.Attachment.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the trunk deleted", func() (bool, string) {
		err := w.ec2.DeleteENI(ctx, trunk.ID)
		return err == nil, fmt.Sprint(err)
	})
	return ids
}

// existing lists which of ids EC2 still has.
func existing(w *world, ids []string) []string {
	have := w.eniIDs()
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return !slices.Contains(have, id) })
}

// annotated reports whether the pod carries its branch annotation.
func (h *harness) annotated(name string) bool {
	var p corev1.Pod
	if err := h.admin.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: name}, &p); err != nil {
		return false
	}
	return p.Annotations[PodENIAnnotation] != ""
}

// TestKubeTrunkGoneBranchesDeletedAfterARestart: as above, and the
// controller stops while the old trunk's branches are being deleted. The
// next controller must find and delete those left: nothing else knows
// them (the node's new trunk does not list them, and the node lives).
// EC2 takes the first old branch's delete and holds the others until the
// stop: slowed by a fixed 5 s each, a test slower than 15 s to stop saw
// all four deleted and failed with nothing to test.
func TestKubeTrunkGoneBranchesDeletedAfterARestart(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	var old []string
	first := ""
	// Every delete until the old branches are known, then theirs but the
	// first: a new pod's allocation that finds the trunk gone rolls its
	// own branch back.
	ec2, released := heldFront(t, w, func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		if old == nil {
			return true
		}
		if !slices.Contains(old, id) {
			return false
		}
		if first == "" {
			first = id
		}
		return id != first
	})
	h := newHarness(t, ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const node = "rc-gone-restart"
	h.addSGPNode(node, inst1, 9)
	ids := trunkGoneWithBranches(t, h, w, node, inst1, 4)
	mu.Lock()
	old = ids
	mu.Unlock()
	if _, err := h.createPod("new", node, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the old trunk's branches being deleted", func() (bool, string) {
		left := existing(w, ids)
		return len(left) < len(ids), fmt.Sprint(left)
	})
	h.stop()
	if left := existing(w, ids); len(left) == 0 {
		t.Fatal("every old branch was deleted before the stop; nothing to test")
	}
	released()
	startController(t, h)
	waitFor(t, 30*time.Second, "the old trunk's branches deleted by the next controller", func() (bool, string) {
		left := existing(w, ids)
		return len(left) == 0, fmt.Sprint(left)
	})
}

// TestKubeNodeNameReusedSlowDeletesDoNotHoldNewTrunk: a Node whose six
// pods hold branches is deleted and another instance registers under its
// name before its CNINode is garbage collected, while EC2 holds the old
// branches' deletes. The new instance's pod must get its branch while
// they are held, and those must all be deleted once EC2 answers. Before, the Node worker deleted the six
// one by one (30 s) before it made the new instance's trunk.
func TestKubeNodeNameReusedSlowDeletesDoNotHoldNewTrunk(t *testing.T) {
	const inst6 = "i-00000000000000006"
	// DeinitDelay 1 min: the old state is still held when the name comes back.
	w, h, held := reusedWorld(t, time.Minute, inst6)
	// The Node only: its CNINode's garbage collection has not run yet.
	old := reusedName(t, h, w, held, "rc-reused-slow", inst1, inst6, 6, reuseNodeOnly)
	newPodBeforeOldDeletes(t, h, w, held, old)
}
