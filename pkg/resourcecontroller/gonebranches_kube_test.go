package resourcecontroller

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestKubeGoneNodesSlowDeletesDoNotHoldLiveNodes: as many SGP nodes as
// there are Node workers are deleted while EC2 holds every
// DeleteNetworkInterface. A node that joins meanwhile gets its trunk, and
// its pod its branch, while those deletes are held. Before, each gone
// node's branch deletes ran in a Node worker, so the new node's reconcile
// (CNINode, trunk) waited until a gone node's deletes were done. Deletes
// slowed by a fixed 15 s instead of held, checked against a 7.5 s clock,
// failed a run slower than that wrongly.
func TestKubeGoneNodesSlowDeletesDoNotHoldLiveNodes(t *testing.T) {
	slowDeletesDoNotHoldLiveNodes(t, func(h *harness, node string) { h.deleteNode(node) })
}

// TestKubeUnmanagedNodesSlowDeletesDoNotHoldLiveNodes: as above, the nodes
// losing SGP (their CNINode feature removed) instead of going. Before, a
// node's branch deletes after the delay ran in its Node worker.
func TestKubeUnmanagedNodesSlowDeletesDoNotHoldLiveNodes(t *testing.T) {
	slowDeletesDoNotHoldLiveNodes(t, (*harness).dropSGPFeature)
}

// slowDeletesDoNotHoldLiveNodes has as many SGP nodes as there are Node
// workers, each with a branch pod, lose their trunk state by lose while
// EC2 holds every DeleteNetworkInterface, and checks that a node joining
// meanwhile gets its trunk and its pod its branch while the deletes are
// held, and that the branches are deleted once EC2 answers.
func slowDeletesDoNotHoldLiveNodes(t *testing.T, lose func(h *harness, node string)) {
	const inst6 = "i-00000000000000006"
	w := newWorld(t, nodeSpec(inst6))
	ec2, released := heldFront(t, w, nil)
	h := newHarness(t, ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	gone := []struct {
		node, inst string
		capacity   int64
	}{{"rc-slow-1", inst1, 9}, {"rc-slow-2", inst2, 9}, {"rc-slow-3", inst3, 18}, {"rc-slow-4", inst4, 38}}
	var held []string
	for i, g := range gone {
		h.addSGPNode(g.node, g.inst, g.capacity)
		pod := fmt.Sprintf("p%d", i)
		if _, err := h.createPod(pod, g.node, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
		held = append(held, h.waitAnnotation(pod)[0].ENIID)
	}
	for _, g := range gone {
		lose(h, g.node)
	}
	waitFor(t, 30*time.Second, "the nodes' branch deletes under way", func() (bool, string) {
		var left []string
		for _, g := range gone {
			if _, ok := h.ctrl.reg.info(g.node); ok {
				left = append(left, g.node)
			}
		}
		return len(left) == 0, fmt.Sprint("trunk states still held: ", left)
	})
	h.addSGPNode("rc-slow-live", inst6, 9)
	if _, err := h.createPod("live", "rc-slow-live", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	h.waitAnnotation("live")
	if left := existing(w, held); len(left) != len(held) {
		t.Fatalf("the nodes' branches left %v of %v: a delete went through while EC2 held it", left, held)
	}
	released()
	waitFor(t, 60*time.Second, "the nodes' branches deleted", func() (bool, string) {
		ids := branchIDs(w.branches())
		left := slices.DeleteFunc(slices.Clone(held), func(id string) bool { return !slices.Contains(ids, id) })
		return len(left) == 0, fmt.Sprint(left)
	})
}
