package resourcecontroller

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestKubeRestartAnnotatedBranchGoneKeepsItsVLAN: a running pod's branch
// ENI is deleted outside the controller while it is down. The pod's
// annotation still names the branch's VLAN, and its sandbox on the node
// still uses that VLAN's link and route table: the rebuilt state must not
// hand that VLAN to the node's next pod (whose wiring would collide with
// it, and be torn down by the first pod's DEL), and the pod is told why it
// has no branch network.
func TestKubeRestartAnnotatedBranchGoneKeepsItsVLAN(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-gonebr", inst1, 9)
	if _, err := h.createPod("a", "rc-gonebr", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	a := h.waitAnnotation("a")
	h.stop()
	ctx := context.Background()
	if err := w.ec2.DisassociateBranch(ctx, a[0].AssociationID); err != nil {
		t.Fatal(err)
	}
	if err := w.ec2.DeleteENI(ctx, a[0].ENIID); err != nil {
		t.Fatal(err)
	}
	startController(t, h)
	if _, err := h.createPod("b", "rc-gonebr", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	b := h.waitAnnotation("b")
	if b[0].VlanID == a[0].VlanID {
		t.Errorf("pod b got VLAN %d, which running pod a's annotation still names", a[0].VlanID)
	}
	h.waitEvent("a", ReasonInvalidAnnotation, a[0].ENIID)
	// Once pod a ends, its VLAN is free again: kept for ever, each such
	// pod would lose the trunk a VLAN until a controller restart.
	h.deletePod("a")
	waitFor(t, 30*time.Second, "pod a's VLAN handed to a new pod", func() (bool, string) {
		name := fmt.Sprintf("c%d", time.Now().UnixNano())
		if _, err := h.createPod(name, "rc-gonebr", map[string]string{"role": "db-client"}); err != nil {
			return false, err.Error()
		}
		c := h.waitAnnotation(name)
		h.deletePod(name)
		return c[0].VlanID == a[0].VlanID, fmt.Sprintf("new pod got VLAN %d", c[0].VlanID)
	})
}
