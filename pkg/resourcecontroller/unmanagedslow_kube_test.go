package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// TestKubeUnmanagedUnknownSlowDeletesDoNotHoldLiveNodes: as many SGP nodes
// as there are Node workers, two branch pods each, lose SGP while the
// controller is down, so no trunk state of theirs is in memory when it
// starts again; EC2 holds every DeleteNetworkInterface. Once their
// branch deletes are under way (a branch of each disassociated), a node
// that joins gets its trunk, and its pod its branch, while those deletes
// are held; once EC2 answers the lost nodes' branches are deleted, their
// capacity removed and their pods told. Before, each node's branches were
// deleted one by one in its Node worker, so the new node's reconcile
// waited for them. Deletes slowed by a fixed 5 s instead of held, checked
// against a 2.5 s clock, failed a run slower than that wrongly.
func TestKubeUnmanagedUnknownSlowDeletesDoNotHoldLiveNodes(t *testing.T) {
	const inst6 = "i-00000000000000006"
	w := newWorld(t, nodeSpec(inst6))
	ec2, released := heldFront(t, w, nil)
	h := newHarness(t, ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	lost := []struct {
		node, inst string
		capacity   int64
	}{{"rc-uslow-1", inst1, 9}, {"rc-uslow-2", inst2, 9}, {"rc-uslow-3", inst3, 18}, {"rc-uslow-4", inst4, 38}}
	held := map[string][]string{} // node: its branches
	var pods []string
	for i, l := range lost {
		h.addSGPNode(l.node, l.inst, l.capacity)
		for _, s := range []string{"a", "b"} {
			pod := fmt.Sprintf("p%d%s", i, s)
			if _, err := h.createPod(pod, l.node, map[string]string{"role": "db-client"}); err != nil {
				t.Fatal(err)
			}
			held[l.node] = append(held[l.node], h.waitAnnotation(pod)[0].ENIID)
			pods = append(pods, pod)
		}
	}
	h.stop()
	ctx := context.Background()
	for _, l := range lost {
		cn := &k8s.CNINode{}
		if err := h.admin.Get(ctx, client.ObjectKey{Name: l.node}, cn); err != nil {
			t.Fatal(err)
		}
		cn.Spec.Features = nil
		if err := h.admin.Update(ctx, cn); err != nil {
			t.Fatal(err)
		}
	}
	startController(t, h)
	waitFor(t, 30*time.Second, "a branch of each lost node disassociated", func() (bool, string) {
		inUse := map[string]bool{}
		for _, b := range w.branches() {
			inUse[b.ID] = b.Status == "in-use"
		}
		var waiting []string
		for node, ids := range held {
			if !slices.ContainsFunc(ids, func(id string) bool { return !inUse[id] }) {
				waiting = append(waiting, node)
			}
		}
		return len(waiting) == 0, fmt.Sprint("all branches still in use: ", waiting)
	})
	h.addSGPNode("rc-uslow-live", inst6, 9)
	if _, err := h.createPod("live", "rc-uslow-live", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	live := h.waitAnnotation("live")
	for node, ids := range held {
		if left := existing(w, ids); len(left) != len(ids) {
			t.Fatalf("node %s's branches left %v of %v: a delete went through while EC2 held it", node, left, ids)
		}
	}
	released()
	waitFor(t, 60*time.Second, "the lost nodes' branches deleted", func() (bool, string) {
		ids := branchIDs(w.branches())
		return slices.Equal(ids, []string{live[0].ENIID}), fmt.Sprint(ids)
	})
	for _, l := range lost {
		h.waitNoCapacity(l.node)
	}
	h.waitEvent(pods[0], ReasonBranchDeletedUnmanaged, held[lost[0].node][0])
}
