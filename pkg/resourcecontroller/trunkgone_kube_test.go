package resourcecontroller

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestKubeTrunkDeletedOutsideIsRemade: the node's trunk ENI is detached
// and deleted outside the controller. The node's next SGP pod must still
// get a branch, on a new trunk of the instance, instead of failing to
// associate for as long as the node lives.
func TestKubeTrunkDeletedOutsideIsRemade(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addNode("rc-trunkgone", inst1, nil)
	h.declareSGP("rc-trunkgone")
	h.waitCapacity("rc-trunkgone", 9)
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
