package resourcecontroller

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
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
	// Every node worker busy: EC2 holds the first look at four other
	// nodes' instances until the name is registered again (a fixed
	// latency let a slow run see the deletion first).
	busy := []string{inst2, inst3, inst4, inst5}
	held, release := holdCalls(w.env.Sim.EC2Handler(), "DescribeInstances", func(q url.Values) bool {
		return slices.Contains(busy, q.Get("InstanceId.1"))
	})
	h := newHarness(t, serveEC2(t, w, held, release), fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const name = "rc-reused"
	h.addNode(name, inst1, map[string]string{LabelHasTrunk: "true"})
	h.waitCapacity(name, 9)
	if _, err := h.createPod("old", name, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	old := h.waitAnnotation("old")
	const inst6 = "i-00000000000000006"
	if _, err := w.env.Sim.RunInstance(nodeSpec(inst6)); err != nil {
		t.Fatal(err)
	}
	for i, id := range busy {
		h.addNode(fmt.Sprintf("rc-busy-%d-%s", i, h.ns), id, map[string]string{LabelHasTrunk: "true"})
	}
	waitFor(t, 30*time.Second, "every node worker held at EC2", func() (bool, string) {
		n := held.parked.Load()
		return int(n) == len(busy), fmt.Sprint(n)
	})
	ctx := context.Background()
	h.deletePod("old")
	if err := h.admin.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	if err := h.admin.Delete(ctx, &k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	h.addNode(name, inst6, map[string]string{LabelHasTrunk: "true"})
	release()
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

// TestKubeNodeNameReusedWithinTheDelayCleansTheOldInstance: a Node is
// deleted and another instance registers under its name within
// DeinitDelay, before the old instance's cleanup ran. The old instance's
// available ENIs (one ipamd made) must still be deleted before its
// CNINode goes. Before, the CNINode lost its finalizer as any CNINode
// deleted under a live Node, and only the cluster cleaner (two passes,
// up to an hour) would take them.
func TestKubeNodeNameReusedWithinTheDelayCleansTheOldInstance(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.DeinitDelay = time.Minute
	h := newHarness(t, w.ec2, cfg)
	const name = "rc-reused-soon"
	h.addSGPNode(name, inst1, 9)
	ctx := context.Background()
	leaked, err := w.ec2.CreateENI(ctx, awsutils.CreateENIRequest{InstanceID: inst1, SubnetID: simtest.NodeSubnetID})
	if err != nil {
		t.Fatal(err)
	}
	old := h.waitCNINode(name, "")
	const inst7 = "i-00000000000000007"
	if _, err := w.env.Sim.RunInstance(nodeSpec(inst7)); err != nil {
		t.Fatal(err)
	}
	h.deleteNode(name)
	waitFor(t, 30*time.Second, "the Node seen gone", func() (bool, string) {
		info, ok := h.ctrl.reg.info(name)
		return !ok || info.Gone, fmt.Sprint(ok)
	})
	h.addNode(name, inst7, nil)
	cn := h.waitCNINode(name, string(old.UID))
	if got := cn.Spec.Tags[awsutils.TagInstanceID]; got != inst7 {
		t.Errorf("the new CNINode names instance %s, want %s", got, inst7)
	}
	if slices.Contains(w.eniIDs(), leaked.ID) {
		t.Errorf("the old instance's available ENI %s was left when its CNINode went", leaked.ID)
	}
}

// TestKubeNodeNameReusedCleanupFailureRetriedAfterGCInterval: as above, but
// the old instance's ENIs cannot be deleted for now (EC2 refuses). The
// failed cleanup is retried after GCInterval, as for any gone node, and
// the new Node gets its CNINode once it succeeds. Before, the new Node's
// reconcile started the cleanup again every 500 ms (an EC2 describe and
// a failed delete each time, EC2's request budget for the whole account).
func TestKubeNodeNameReusedCleanupFailureRetriedAfterGCInterval(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.DeinitDelay = time.Minute
	cfg.GCInterval = 4 * time.Second
	h := newHarness(t, w.ec2, cfg)
	const name = "rc-reused-fail"
	h.addSGPNode(name, inst1, 9)
	ctx := context.Background()
	leaked, err := w.ec2.CreateENI(ctx, awsutils.CreateENIRequest{InstanceID: inst1, SubnetID: simtest.NodeSubnetID})
	if err != nil {
		t.Fatal(err)
	}
	old := h.waitCNINode(name, "")
	const inst8 = "i-00000000000000008"
	if _, err := w.env.Sim.RunInstance(nodeSpec(inst8)); err != nil {
		t.Fatal(err)
	}
	if err := w.env.Sim.SetFaults(vpcsim.Faults{DenyActions: []string{"DeleteNetworkInterface"}}); err != nil {
		t.Fatal(err)
	}
	h.deleteNode(name)
	waitFor(t, 30*time.Second, "the Node seen gone", func() (bool, string) {
		info, ok := h.ctrl.reg.info(name)
		return !ok || info.Gone, fmt.Sprint(ok)
	})
	base := counterValue(t, metricNodeCleanFailures)
	h.addNode(name, inst8, nil)
	var first, second time.Time
	waitFor(t, 30*time.Second, "the old instance's cleanup failed twice", func() (bool, string) {
		n := counterValue(t, metricNodeCleanFailures) - base
		if n >= 1 && first.IsZero() {
			first = time.Now()
		}
		if n >= 2 {
			second = time.Now()
			return true, ""
		}
		return false, fmt.Sprint(n)
	})
	// Polling adds up to its period to each side; half the interval is
	// far from the 500 ms of before.
	if gap := second.Sub(first); gap < cfg.GCInterval/2 {
		t.Errorf("the failed cleanup of the old instance was retried %s after the first failure, want about GCInterval %s", gap, cfg.GCInterval)
	}
	if err := w.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	cn := h.waitCNINode(name, string(old.UID))
	if got := cn.Spec.Tags[awsutils.TagInstanceID]; got != inst8 {
		t.Errorf("the new CNINode names instance %s, want %s", got, inst8)
	}
	if slices.Contains(w.eniIDs(), leaked.ID) {
		t.Errorf("the old instance's available ENI %s was left when its CNINode went", leaked.ID)
	}
}
