package resourcecontroller

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestKubeHungCooledDeleteDoesNotHoldOtherNodes: EC2 holds the delete of
// one node's released branch. Another node's released branch must still be
// deleted once its cool-down is over, and the held one once EC2 answers
// (a failed delete is retried, not lost). Before, the cool-down loop
// deleted every node's branches in turn: the held call (until EC2's client
// gave up, 30 s here) held the other node's, which count against its
// capacity meanwhile.
func TestKubeHungCooledDeleteDoesNotHoldOtherNodes(t *testing.T) {
	w := newWorld(t)
	deletes, release, holdENI := holdDeletesOf(w.env.Sim.EC2Handler())
	h := newHarness(t, serveEC2(t, w, deletes, release), fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	// Named so that the hung node comes first in the loop's order.
	const first, second = "rc-cdhung-a", "rc-cdhung-b"
	h.addSGPNode(first, inst1, 9)
	h.addSGPNode(second, inst2, 9)
	for name, node := range map[string]string{"pa": first, "pb": second} {
		if _, err := h.createPod(name, node, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
	}
	a := h.waitAnnotation("pa")[0].ENIID
	b := h.waitAnnotation("pb")[0].ENIID
	holdENI(a)
	h.deletePod("pa")
	waitFor(t, 30*time.Second, "the first node's cooled branch delete held at EC2", func() (bool, string) {
		n := deletes.parked.Load()
		return n == 1, fmt.Sprint(n)
	})
	h.deletePod("pb")
	// Its cool-down is 2 s; EC2's client gives up the held call after 30 s.
	waitFor(t, 10*time.Second, "the second node's cooled branch deleted while the first's delete is held", func() (bool, string) {
		left := existing(w, []string{b})
		return len(left) == 0, fmt.Sprint(left)
	})
	release()
	waitFor(t, 60*time.Second, "the held branch deleted once EC2 answers", func() (bool, string) {
		left := existing(w, []string{a, b})
		return slices.Equal(left, nil), fmt.Sprint(left)
	})
}
