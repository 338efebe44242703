package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestKubeNodeNameReusedByAnotherInstance: a Node is deleted and a new
// instance registers under the same name (EKS names nodes by private IP,
// which a new instance can get) before the controller, busy with other
// nodes, has looked at the name again. The name's trunk state is the old
// instance's: the new one must get its own trunk, and its pods branches
// on it, not on the old instance's trunk.
func TestKubeNodeNameReusedByAnotherInstance(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const name = "rc-reused"
	h.addNode(name, inst1, map[string]string{LabelHasTrunk: "true"})
	h.waitCapacity(name, 9)
	if _, err := h.createPod("old", name, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	old := h.waitAnnotation("old")
	const inst6 = "i-0000000000000006"
	if _, err := w.env.Sim.RunInstance(vpcsim.InstanceSpec{ID: inst6, Type: "m5.large", Subnet: simtest.NodeSubnetID, SecurityGroups: []string{sgNode}}); err != nil {
		t.Fatal(err)
	}
	// Keep every node worker busy: four other nodes whose first look at
	// EC2 takes seconds.
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{"DescribeInstances": vpcsim.Duration(3 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{inst2, inst3, inst4, inst5} {
		h.addNode(fmt.Sprintf("rc-busy-%d-%s", i, h.ns), id, map[string]string{LabelHasTrunk: "true"})
	}
	ctx := context.Background()
	h.deletePod("old")
	if err := h.admin.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	if err := h.admin.Delete(ctx, &k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	h.addNode(name, inst6, map[string]string{LabelHasTrunk: "true"})
	waitFor(t, 60*time.Second, "a trunk on the new instance", func() (bool, string) {
		var on []string
		for _, tr := range w.trunks() {
			if tr.Attachment != nil {
				if tr.Attachment.InstanceID == inst6 {
					return true, ""
				}
				on = append(on, tr.Attachment.InstanceID)
			}
		}
		return false, fmt.Sprintf("trunks on %v", on)
	})
	if err := w.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.createPod("new", name, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	got := h.waitAnnotation("new")
	var trunk6 string
	for _, tr := range w.trunks() {
		if tr.Attachment != nil && tr.Attachment.InstanceID == inst6 {
			trunk6 = tr.ID
		}
	}
	as, err := w.ec2.TrunkAssociations(ctx, trunk6)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) != 1 || as[0].BranchID != got[0].ENIID {
		t.Errorf("the new pod's branch %s is not on the new instance's trunk %s (associations %+v)", got[0].ENIID, trunk6, as)
	}
	waitFor(t, 30*time.Second, "the old instance's branch deleted", func() (bool, string) {
		ids := branchIDs(w.branches())
		return !slices.Contains(ids, old[0].ENIID), fmt.Sprint(ids)
	})
}
