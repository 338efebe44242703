package resourcecontroller

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestKubeUnmanagedFailedDeletesSweptAfterRestart: a node loses SGP while
// EC2 refuses both the disassociate and the delete of its branch, so the
// branch stays in use on the still-attached trunk and its delete is only
// in the GC retry list. The controller restarts with EC2 well again. Its
// pod still runs: after a restart nothing tells this node from one whose
// CNINode was made again without the feature
// (TestKubeSweepSparesRunningPodsOfRemadeNode), so the branch stays while
// the pod runs, and must be deleted once the pod is, while another SGP
// node's pod keeps its branch. Before the sweep, nothing deleted it: the
// node holds no trunk state and no pod-eni, and the cluster cleaner only
// takes available ENIs.
func TestKubeUnmanagedFailedDeletesSweptAfterRestart(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const lose, keep = "rc-unmanage-restart", "rc-unmanage-restart-keep"
	h.addSGPNode(lose, inst1, 9)
	h.addSGPNode(keep, inst2, 9)
	for pod, node := range map[string]string{"a": lose, "b": keep} {
		if _, err := h.createPod(pod, node, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
	}
	a := h.waitAnnotation("a")
	b := h.waitAnnotation("b")
	w.refuseBranchDeletes(t)
	h.dropSGPFeature(lose)
	h.waitNoCapacity(lose)
	waitFor(t, 30*time.Second, "the failed delete left to the GC retry list", func() (bool, string) {
		_, held := h.ctrl.reg.info(lose)
		h.ctrl.reg.mu.Lock()
		loose := slices.ContainsFunc(h.ctrl.reg.loose, func(l BranchENI) bool { return l.ENIID == a[0].ENIID })
		h.ctrl.reg.mu.Unlock()
		return !held && loose, fmt.Sprintf("trunk state held %v, in retry list %v", held, loose)
	})
	h.stop()
	if err := w.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if ids := branchIDs(w.branches()); !slices.Contains(ids, a[0].ENIID) {
		t.Fatalf("branches %v: pod a's %s already gone before the restart", ids, a[0].ENIID)
	}
	startController(t, h)
	waitFor(t, 30*time.Second, "the sweep to keep the running pod's branch", func() (bool, string) {
		spared := h.ctrl.spared.get()
		return slices.ContainsFunc(spared, func(c podClaim) bool { return c.eni == a[0].ENIID }), fmt.Sprint(spared)
	})
	if ids := branchIDs(w.branches()); !slices.Contains(ids, a[0].ENIID) {
		t.Fatalf("branches %v: running pod a's %s deleted", ids, a[0].ENIID)
	}
	h.deletePod("a")
	waitFor(t, 30*time.Second, "the unmanaged node's branch deleted", func() (bool, string) {
		ids := branchIDs(w.branches())
		return !slices.Contains(ids, a[0].ENIID), fmt.Sprint(ids)
	})
	if ids := branchIDs(w.branches()); !slices.Equal(ids, []string{b[0].ENIID}) {
		t.Errorf("branches %v, want only pod b's %s on the SGP node", ids, b[0].ENIID)
	}
}

// TestKubeUnmanagedLaterFailedDeletesRetriedByGC: the start-up sweep has
// succeeded; only then does a node lose SGP for good, while EC2 refuses
// the disassociate and the delete of its branch for several GC passes.
// Once EC2 is well again the branch must be deleted without a restart
// (the GC retry), the pod having been told.
func TestKubeUnmanagedLaterFailedDeletesRetriedByGC(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const node = "rc-unmanage-later"
	h.addSGPNode(node, inst1, 9)
	if _, err := h.createPod("a", node, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	a := h.waitAnnotation("a")
	w.refuseBranchDeletes(t)
	h.dropSGPFeature(node)
	h.waitNoCapacity(node)
	h.waitEvent("a", ReasonBranchDeletedUnmanaged, a[0].ENIID)
	// Several GC passes refused (3 attempts per call).
	waitFor(t, 30*time.Second, "deletes refused over several GC passes", func() (bool, string) {
		n := w.env.Sim.Stats().Errors["DeleteNetworkInterface"]["InternalError"]
		return n >= 12, fmt.Sprint(n, " refused")
	})
	if ids := branchIDs(w.branches()); !slices.Contains(ids, a[0].ENIID) {
		t.Fatalf("branches %v: pod a's %s gone while EC2 refused deletes", ids, a[0].ENIID)
	}
	if err := w.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the unmanaged node's branch deleted by the GC retry", func() (bool, string) {
		ids := branchIDs(w.branches())
		return !slices.Contains(ids, a[0].ENIID), fmt.Sprint(ids)
	})
}
