package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestKubeFailedRollbackKeepsTheVLAN: EC2 applies a branch's association but
// every answer is lost (the retries, with the same client token, too), and the
// rollback's delete fails too. The branch stays associated on its VLAN, so
// the VLAN is not free: the pod's retry must take another one and get its
// branch without waiting for the leaked-branch GC (an hour here), and the
// stranded branch is deleted once EC2 lets it.
func TestKubeFailedRollbackKeepsTheVLAN(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.GCInterval = time.Hour
	h := newHarness(t, w.ec2, cfg)
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-rollback", inst1, 9)
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{
		{Action: "AssociateTrunkInterface", Code: "InternalError", Count: 3, After: true}, // applied, every attempt answered 500
		{Action: "DeleteNetworkInterface", Code: "InternalError", Count: 3},               // every attempt of the rollback's delete
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.createPod("stranded", "rc-rollback", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	got := h.waitAnnotation("stranded")
	trunkID := w.trunks()[0].ID
	waitFor(t, 30*time.Second, "only the annotated branch left, associated on its VLAN", func() (bool, string) {
		ids := branchIDs(w.branches())
		as, err := w.ec2.TrunkAssociations(context.Background(), trunkID)
		if err != nil {
			return false, err.Error()
		}
		ok := slices.Equal(ids, []string{got[0].ENIID}) && len(as) == 1 && as[0].BranchID == got[0].ENIID && as[0].VLAN == got[0].VlanID
		return ok, fmt.Sprintf("branches %v associations %+v", ids, as)
	})
}

// TestKubeGivenUpDeleteFreesTheVLANOnceGCDeletes: EC2 refuses a released
// branch's delete through every retry (an outage or throttling during the
// cool-down), so the cool-down queue gives it up to the leaked-branch GC.
// Once the GC has deleted it, its VLAN is free again: the next pod gets
// the lowest id, 1. Kept taken, each such outage would lose VLANs until
// the trunk has none left and every pod of the node fails until a
// controller restart.
func TestKubeGivenUpDeleteFreesTheVLANOnceGCDeletes(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-giveup", inst1, 9)
	if _, err := h.createPod("a", "rc-giveup", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	if got := h.waitAnnotation("a"); got[0].VlanID != 1 {
		t.Fatalf("first pod on VLAN %d, want 1", got[0].VlanID)
	}
	// Every attempt of every retry of the cool-down's delete fails.
	fails := maxDeleteRetries * 3
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "DeleteNetworkInterface", Code: "InternalError", Count: fails}}}); err != nil {
		t.Fatal(err)
	}
	h.deletePod("a")
	waitFor(t, 30*time.Second, "the released branch given up and deleted by the GC", func() (bool, string) {
		n := w.env.Sim.Stats().Errors["DeleteNetworkInterface"]["InternalError"]
		ids := branchIDs(w.branches())
		return n >= int64(fails) && len(ids) == 0, fmt.Sprintf("%d refused deletes, branches %v", n, ids)
	})
	if _, err := h.createPod("b", "rc-giveup", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	if got := h.waitAnnotation("b"); got[0].VlanID != 1 {
		t.Errorf("the next pod got VLAN %d, want 1: the given-up branch's VLAN stayed taken after the GC deleted it", got[0].VlanID)
	}
}
