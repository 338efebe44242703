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
	h.addNode("rc-rollback", inst1, nil)
	h.declareSGP("rc-rollback")
	h.waitCapacity("rc-rollback", 9)
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
