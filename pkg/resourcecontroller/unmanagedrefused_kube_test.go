package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestKubeUnmanagedRefusedDeleteHoldsVLANAndLimit: a node loses SGP while
// EC2 refuses the disassociate and the delete of pod a's branch, so the
// branch stays on the trunk with its VLAN. Pod a ends and the node gets
// SGP back, EC2 still refusing. Until EC2 confirms the delete, no new pod
// may get that VLAN and the branch counts against the trunk's limit: of
// nine pods (the limit), eight get a branch and the ninth waits; once EC2
// deletes the branch the ninth gets one.
func TestKubeUnmanagedRefusedDeleteHoldsVLANAndLimit(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const node = "rc-unmanage-refused"
	h.addSGPNode(node, inst1, 9)
	if _, err := h.createPod("a", node, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	a := h.waitAnnotation("a")
	w.refuseBranchDeletes(t)
	setSGP := func(on bool) {
		t.Helper()
		ctx := context.Background()
		cn := &k8s.CNINode{}
		if err := h.admin.Get(ctx, client.ObjectKey{Name: node}, cn); err != nil {
			t.Fatal(err)
		}
		cn.Spec.Features = nil
		if on {
			cn.Spec.Features = []k8s.CNINodeFeature{{Name: k8s.FeatureSecurityGroupsForPods}}
		}
		if err := h.admin.Update(ctx, cn); err != nil {
			t.Fatal(err)
		}
	}
	setSGP(false)
	h.waitNoCapacity(node)
	h.waitEvent("a", ReasonBranchDeletedUnmanaged, a[0].ENIID)
	h.deletePod("a")
	setSGP(true)
	h.waitCapacity(node, 9)
	if ids := branchIDs(w.branches()); !slices.Contains(ids, a[0].ENIID) {
		t.Fatalf("branches %v: pod a's %s gone while EC2 refused its delete", ids, a[0].ENIID)
	}

	var pods []string
	for i := range 9 {
		p := fmt.Sprintf("c%d", i)
		pods = append(pods, p)
		if _, err := h.createPod(p, node, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
	}
	var waiting string
	waitFor(t, 60*time.Second, "eight pods with a branch, one at the limit", func() (bool, string) {
		got, full := 0, ""
		for _, p := range pods {
			if h.annotated(p) {
				got++
			} else if h.hasEvent(p, ReasonBranchAllocationFailed, "limit") {
				full = p
			}
		}
		waiting = full
		return got == 8 && full != "", fmt.Sprintf("%d annotated, at the limit: %q", got, full)
	})
	for _, p := range pods {
		if p == waiting {
			continue
		}
		if got := h.waitAnnotation(p); got[0].VlanID == a[0].VlanID {
			t.Errorf("pod %s got VLAN %d, which pod a's branch %s still holds in EC2", p, got[0].VlanID, a[0].ENIID)
		}
	}
	if err := w.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	h.waitAnnotation(waiting)
	if ids := branchIDs(w.branches()); slices.Contains(ids, a[0].ENIID) || len(ids) != 9 {
		t.Errorf("branches %v, want the nine pods' and not pod a's %s", ids, a[0].ENIID)
	}
}

// hasEvent reports whether the pod has an event of reason whose message
// contains substr.
func (h *harness) hasEvent(pod, reason, substr string) bool {
	var l corev1.EventList
	if err := h.admin.List(context.Background(), &l, client.InNamespace(h.ns)); err != nil {
		return false
	}
	return slices.ContainsFunc(l.Items, func(e corev1.Event) bool {
		return e.InvolvedObject.Name == pod && e.Reason == reason && strings.Contains(e.Message, substr)
	})
}
