package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestKubeTrunkInitDescribesBranchesOnce: a node's trunk init lists the
// instance's branch ENIs once, for both its trunk's rebuild and the
// deletion of an earlier trunk's branches. Counted in vpcsim: the
// DescribeNetworkInterfaces calls of a new trunk's init (the instance's
// attached ENIs, its stray trunks, the new trunk's attach wait, its
// branches) and of a restarted controller's adoption of it (attached
// ENIs, branches). Before, the earlier trunk's sweep described the
// instance's branches and the rebuild the trunk's: 5 and 3. The earlier trunk's branch must still be
// deleted, and the pod's branch adopted.
func TestKubeTrunkInitDescribesBranchesOnce(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.GCInterval = time.Hour // no GC pass describes during the counts
	h := newHarness(t, w.ec2, cfg)
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	ctx := context.Background()
	describes := func() int64 { return w.env.Sim.Stats().Calls["DescribeNetworkInterfaces"] }
	// The start-up describes: the lost-branch sweep and the cluster
	// cleaner, one page each.
	waitFor(t, 30*time.Second, "the start-up describes", func() (bool, string) {
		n := describes()
		return n >= 2, fmt.Sprint(n)
	})
	// A branch of a trunk the instance had before (the controller was
	// down when it went), made after the start-up sweep.
	stale, err := w.ec2.CreateBranchENI(ctx, awsutils.BranchRequest{InstanceID: inst1, TrunkID: "eni-000000000000000ee", VLAN: 4, SubnetID: simtest.NodeSubnetID, ClusterName: "test"})
	if err != nil {
		t.Fatal(err)
	}
	const node = "rc-init-calls"
	before := describes()
	h.addSGPNode(node, inst1, 9)
	made := describes() - before
	t.Logf("a new trunk's init: %d DescribeNetworkInterfaces", made)
	if made > 4 {
		t.Errorf("a new trunk's init made %d DescribeNetworkInterfaces calls, want at most 4 (attached ENIs, stray trunks, attach wait, branches)", made)
	}
	waitFor(t, 30*time.Second, "the earlier trunk's branch deleted", func() (bool, string) {
		left := existing(w, []string{stale.ID})
		return len(left) == 0, fmt.Sprint(left)
	})
	if _, err := h.createPod("p", node, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	held := h.waitAnnotation("p")[0].ENIID

	// Adopted again, as by a restarted controller: the state forgotten
	// and the node reconciled (a restart adds its own start-up describes).
	before = describes()
	h.ctrl.reg.drop(node)
	h.ctrl.kickNode(ctx, node)
	waitFor(t, 30*time.Second, "the trunk adopted", func() (bool, string) {
		_, ok := h.ctrl.reg.info(node)
		return ok, "no trunk state"
	})
	adopted := describes() - before
	t.Logf("the adoption of the trunk: %d DescribeNetworkInterfaces", adopted)
	if adopted > 2 {
		t.Errorf("adopting the trunk made %d DescribeNetworkInterfaces calls, want at most 2 (attached ENIs, branches)", adopted)
	}
	var p corev1.Pod
	if err := h.admin.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "p"}, &p); err != nil {
		t.Fatal(err)
	}
	if !h.ctrl.reg.holds(node, p.UID) || !slices.Contains(w.eniIDs(), held) {
		t.Errorf("the pod's branch %s was not adopted with the trunk", held)
	}
	if !slices.Contains(w.eniIDs(), held) {
		t.Errorf("the pod's branch %s was deleted by the restarted controller", held)
	}
}
