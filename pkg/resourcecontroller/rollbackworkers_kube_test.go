package resourcecontroller

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestKubeRollbacksDoNotHoldPodWorkers: EC2 refuses the branch
// associations of as many pods as there are pod workers, and holds the
// deletes of the branches made for them. A pod on another node must still
// get its branch meanwhile; once EC2 answers, the refused pods' branches
// are deleted, every pod holds one branch on a VLAN of its own, and no
// other branch is left. Before, each rollback deleted in its pod's worker
// for up to a minute: with every worker taken, every other pod of the
// cluster waited.
func TestKubeRollbacksDoNotHoldPodWorkers(t *testing.T) {
	w := newWorld(t)
	deletes, releaseDeletes := holdCalls(w.env.Sim.EC2Handler(), "DeleteNetworkInterface", nil)
	h := newHarness(t, serveEC2(t, w, deletes, releaseDeletes), fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const failing, live = "rc-rbfail", "rc-rblive2"
	h.addSGPNode(failing, inst1, 9)
	h.addSGPNode(live, inst2, 9)
	const code = "InvalidParameterValue" // not retried by the client
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "AssociateTrunkInterface", Code: code, Count: podWorkers}}}); err != nil {
		t.Fatal(err)
	}
	var pods []string
	for i := range podWorkers {
		name := fmt.Sprintf("f%d", i)
		pods = append(pods, name)
		if _, err := h.createPod(name, failing, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "every pod worker's association refused and a rollback delete held at EC2", func() (bool, string) {
		n := w.env.Sim.Stats().Errors["AssociateTrunkInterface"][code]
		p := deletes.parked.Load()
		return n == podWorkers && p > 0, fmt.Sprintf("%d refused, %d deletes held", n, p)
	})
	if _, err := h.createPod("live", live, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	// A pod gets its branch in well under a second here; EC2's client
	// gives up a held call after 30 s.
	waitFor(t, 10*time.Second, "the live node's pod's branch while the rollback deletes are held", func() (bool, string) {
		return h.annotated("live"), "not annotated"
	})
	releaseDeletes()
	pods = append(pods, "live")
	waitFor(t, 60*time.Second, "every pod's branch, on VLANs of their own, and nothing else", func() (bool, string) {
		var held []string
		vlans := map[string][]int{}
		for _, p := range pods {
			if !h.annotated(p) {
				return false, p + " not annotated"
			}
			b := h.waitAnnotation(p)[0]
			held = append(held, b.ENIID)
			node := failing
			if p == "live" {
				node = live
			}
			if slices.Contains(vlans[node], b.VlanID) {
				return false, fmt.Sprintf("VLAN %d twice on %s", b.VlanID, node)
			}
			vlans[node] = append(vlans[node], b.VlanID)
		}
		slices.Sort(held)
		left := branchIDs(w.branches())
		slices.Sort(left)
		return slices.Equal(left, held), fmt.Sprintf("branches %v, held %v", left, held)
	})
}
