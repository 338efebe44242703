package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestKubeFailedBranchDeleteCleanedAfterRestart: the node's trunk is found
// gone, and the delete of the branch its state held fails, so the branch
// waits in the controller's memory for a retry. The controller restarts
// before EC2 lets the delete through: the retry list is lost, the branch
// names a trunk nothing holds, and only the cluster cleaner can find it.
// It must be deleted (two cleaner passes after the restart), and the live
// pod's branch kept.
func TestKubeFailedBranchDeleteCleanedAfterRestart(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.ClusterCleanInterval = time.Hour // one pass at start only, before the restart
	h := newHarness(t, w.ec2, cfg)
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-cleanrestart", inst1, 9)
	if _, err := h.createPod("a", "rc-cleanrestart", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	a := h.waitAnnotation("a")
	old := w.trunks()[0]
	ctx := context.Background()
	if err := w.ec2.DisassociateBranch(ctx, a[0].AssociationID); err != nil {
		t.Fatal(err)
	}
	if err := w.ec2.DetachENI(ctx, old.Attachment.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the old trunk deleted", func() (bool, string) {
		err := w.ec2.DeleteENI(ctx, old.ID)
		return err == nil && len(w.trunks()) == 0, fmt.Sprint(err)
	})
	// Every delete refused until the restart.
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "DeleteNetworkInterface", Code: "InternalError"}}}); err != nil {
		t.Fatal(err)
	}
	// Pod b's association on the gone trunk finds it gone.
	if _, err := h.createPod("b", "rc-cleanrestart", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	b := h.waitAnnotation("b")
	waitFor(t, 30*time.Second, "pod a's branch waiting in memory for a retry", func() (bool, string) {
		h.ctrl.reg.mu.Lock()
		defer h.ctrl.reg.mu.Unlock()
		ids := make([]string, 0, len(h.ctrl.reg.loose))
		for _, l := range h.ctrl.reg.loose {
			ids = append(ids, l.ENIID)
		}
		return slices.Contains(ids, a[0].ENIID), fmt.Sprint(ids)
	})
	h.stop()
	if err := w.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	h.cfg.ClusterCleanInterval = 200 * time.Millisecond
	startController(t, h)
	waitFor(t, 30*time.Second, "only pod b's branch left", func() (bool, string) {
		ids := branchIDs(w.branches())
		return len(ids) == 1 && ids[0] == b[0].ENIID, fmt.Sprint(ids)
	})
}
