package resourcecontroller

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestKubeUnmanagedRefusedDeleteToldTruly: two nodes lose SGP, one while
// the controller runs (its trunk state known), one while it is down, and
// EC2 refuses every disassociate and delete, so both pods' branches stay
// on their trunks. The pods' and nodes' events must not say a branch was
// deleted while EC2 still holds it; once EC2 is well again, the GC retry
// deletes pod b's, and pod a's, whose retry the restart lost, goes once
// pod a is deleted (the start-up sweep keeps a running pod's branch,
// sparedbranches.go). Before, both pods were told "branch ENI … was deleted and
// the pod has no branch network" and the first node "1 branch ENIs in use
// and 0 cooling down were deleted".
func TestKubeUnmanagedRefusedDeleteToldTruly(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const live, down = "rc-unmanage-told", "rc-unmanage-told-down"
	h.addSGPNode(live, inst1, 9)
	h.addSGPNode(down, inst2, 9)
	for pod, node := range map[string]string{"a": live, "b": down} {
		if _, err := h.createPod(pod, node, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
	}
	a := h.waitAnnotation("a")
	b := h.waitAnnotation("b")
	w.refuseBranchDeletes(t)
	// claimsDeleted: the message says a branch EC2 still holds was deleted.
	claimsDeleted := func(what, msg, eni string) {
		t.Helper()
		if !slices.Contains(branchIDs(w.branches()), eni) {
			t.Fatalf("%s: branch %s already gone; nothing to test", what, eni)
		}
		if strings.Contains(msg, "was deleted") || strings.Contains(msg, "were deleted") {
			t.Errorf("%s says %q, but EC2 still holds branch %s", what, msg, eni)
		}
	}

	h.dropSGPFeature(live)
	h.waitNoCapacity(live)
	claimsDeleted("pod a's event", h.waitEvent("a", ReasonBranchDeletedUnmanaged, a[0].ENIID).Message, a[0].ENIID)
	claimsDeleted("node "+live+"'s event", h.waitNodeEvents(live, ReasonNodeUnmanaged, 1)[0], a[0].ENIID)

	h.stop()
	h.dropSGPFeature(down)
	startController(t, h)
	h.waitNoCapacity(down)
	claimsDeleted("pod b's event", h.waitEvent("b", ReasonBranchDeletedUnmanaged, b[0].ENIID).Message, b[0].ENIID)
	claimsDeleted("node "+down+"'s event", h.waitNodeEvents(down, ReasonNodeUnmanaged, 1)[0], b[0].ENIID)

	if err := w.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "pod b's branch deleted by the GC retry", func() (bool, string) {
		left := existing(w, []string{b[0].ENIID})
		return len(left) == 0, fmt.Sprint(left)
	})
	h.deletePod("a")
	waitFor(t, 30*time.Second, "pod a's branch deleted once the pod is", func() (bool, string) {
		left := existing(w, []string{a[0].ENIID})
		return len(left) == 0, fmt.Sprint(left)
	})
}
