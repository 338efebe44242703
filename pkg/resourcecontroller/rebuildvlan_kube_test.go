package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestKubeRestartOrphanOnALiveVLANKeepsIt: a branch whose create answer
// was lost (so its VLAN went back and was handed to the next pod's branch)
// is still in EC2 when the controller restarts. The rebuild deletes it as
// an orphan; that must not free the VLAN the live pod's branch holds, or
// the next pod is handed that VLAN, EC2 refuses the association, and the
// pod retries on the same VLAN for as long as the first pod runs.
func TestKubeRestartOrphanOnALiveVLANKeepsIt(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-dupvlan", inst1, 9)
	if _, err := h.createPod("a", "rc-dupvlan", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	a := h.waitAnnotation("a")
	h.stop()
	trunkID := w.trunks()[0].ID
	orphan, err := w.ec2.CreateBranchENI(context.Background(), awsutils.BranchRequest{InstanceID: inst1, TrunkID: trunkID, VLAN: a[0].VlanID, SubnetID: simtest.NodeSubnetID, SecurityGroups: []string{sgDB}, ClusterName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	startController(t, h)
	waitFor(t, 30*time.Second, "the orphan deleted", func() (bool, string) {
		ids := branchIDs(w.branches())
		return !slices.Contains(ids, orphan.ID), fmt.Sprint(ids)
	})
	if _, err := h.createPod("b", "rc-dupvlan", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	b := h.waitAnnotation("b")
	if b[0].VlanID == a[0].VlanID {
		t.Errorf("pod b got pod a's VLAN %d", a[0].VlanID)
	}
}
