package resourcecontroller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestKubeTrunkDeletedOutsideIsRemade: the node's trunk ENI is detached
// and deleted outside the controller. The node's next SGP pod must still
// get a branch, on a new trunk of the instance, instead of failing to
// associate for as long as the node lives.
func TestKubeTrunkDeletedOutsideIsRemade(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-trunkgone", inst1, 9)
	old := w.trunks()[0]
	ctx := context.Background()
	if err := w.ec2.DetachENI(ctx, old.Attachment.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the old trunk deleted", func() (bool, string) {
		err := w.ec2.DeleteENI(ctx, old.ID)
		return err == nil && len(w.trunks()) == 0, fmt.Sprint(err)
	})
	if _, err := h.createPod("p", "rc-trunkgone", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	got := h.waitAnnotation("p")
	ts := w.trunks()
	if len(ts) != 1 || ts[0].ID == old.ID || ts[0].Attachment == nil || ts[0].Attachment.InstanceID != inst1 {
		t.Fatalf("trunks %+v: want one new trunk attached to %s", ts, inst1)
	}
	as, err := w.ec2.TrunkAssociations(ctx, ts[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].BranchID != got[0].ENIID {
		t.Errorf("new trunk's associations %+v, want the pod's branch %s", as, got[0].ENIID)
	}
}

// TestKubeTrunkGoneFailedBranchDeleteRetried: when the node's trunk is
// found gone, the branches its state held (a running pod's, here) are
// deleted; one whose delete EC2 refuses must be retried, not left in EC2
// for ever (the dropped state was the only thing that knew it).
func TestKubeTrunkGoneFailedBranchDeleteRetried(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-trunkgone2", inst1, 9)
	if _, err := h.createPod("a", "rc-trunkgone2", map[string]string{"role": "db-client"}); err != nil {
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
	// The rollback of b's first branch, then the delete of a's branch:
	// every attempt of both refused.
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "DeleteNetworkInterface", Code: "InternalError", Count: 6}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.createPod("b", "rc-trunkgone2", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	b := h.waitAnnotation("b")
	waitFor(t, 30*time.Second, "only pod b's branch left", func() (bool, string) {
		ids := branchIDs(w.branches())
		return len(ids) == 1 && ids[0] == b[0].ENIID, fmt.Sprint(ids)
	})
}
