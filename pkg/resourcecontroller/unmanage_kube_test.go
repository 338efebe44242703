package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// TestKubeUnmanagedNodeDeletesBranches: a node loses SGP (its CNINode
// feature removed, no label) while one pod runs with a branch and another
// pod's branch cools down. After the delay both branches must be deleted,
// the pod-eni capacity removed and the running pod told; the running pod
// keeps its annotation. Given SGP again, the node adopts its trunk with no
// branch left on it, and a new pod's branch does not take the VLAN the
// still-running pod's sandbox uses.
func TestKubeUnmanagedNodeDeletesBranches(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.Cooldown = time.Hour // b's branch is still cooling when SGP goes
	cfg.DeinitDelay = 500 * time.Millisecond
	h := newHarness(t, w.ec2, cfg)
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const node = "rc-unmanage"
	h.addSGPNode(node, inst1, 9)
	for _, p := range []string{"a", "b"} {
		if _, err := h.createPod(p, node, map[string]string{"role": "db-client"}); err != nil {
			t.Fatal(err)
		}
	}
	a := h.waitAnnotation("a")
	h.waitAnnotation("b")
	h.deletePod("b")
	waitFor(t, 30*time.Second, "pod b's branch cooling", func() (bool, string) {
		h.ctrl.reg.mu.Lock()
		defer h.ctrl.reg.mu.Unlock()
		tr := h.ctrl.reg.trunks[node]
		return tr != nil && len(tr.cooling) == 1, "not yet"
	})
	trunk := w.trunks()[0].ID

	ctx := context.Background()
	setFeatures := func(fs []k8s.CNINodeFeature) {
		t.Helper()
		cn := &k8s.CNINode{}
		if err := h.admin.Get(ctx, client.ObjectKey{Name: node}, cn); err != nil {
			t.Fatal(err)
		}
		cn.Spec.Features = fs
		if err := h.admin.Update(ctx, cn); err != nil {
			t.Fatal(err)
		}
	}
	setFeatures(nil)
	waitFor(t, 30*time.Second, "every branch of the node deleted", func() (bool, string) {
		ids := branchIDs(w.branches())
		return len(ids) == 0, fmt.Sprint(ids)
	})
	h.waitNoCapacity(node)
	h.waitEvent("a", ReasonBranchDeletedUnmanaged, a[0].ENIID)
	var pa corev1.Pod
	if err := h.admin.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "a"}, &pa); err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeAnnotation(pa.Annotations[PodENIAnnotation]); err != nil || len(got) != 1 || got[0].ENIID != a[0].ENIID {
		t.Errorf("pod a's annotation %q, want it kept: %v", pa.Annotations[PodENIAnnotation], err)
	}

	setFeatures([]k8s.CNINodeFeature{{Name: k8s.FeatureSecurityGroupsForPods}})
	h.waitCapacity(node, 9)
	if _, err := h.createPod("c", node, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	c := h.waitAnnotation("c")
	if c[0].VlanID == a[0].VlanID {
		t.Errorf("pod c got VLAN %d, which running pod a's sandbox still uses", c[0].VlanID)
	}
	if ts := w.trunks(); len(ts) != 1 || ts[0].ID != trunk {
		t.Errorf("trunks %v, want the node's trunk %s adopted", ts, trunk)
	}
	waitFor(t, 30*time.Second, "only pod c's branch on the node", func() (bool, string) {
		ids := branchIDs(w.branches())
		return slices.Equal(ids, []string{c[0].ENIID}), fmt.Sprint(ids)
	})
}

// TestKubeCNINodeRemadeKeepsFeatures: a CNINode deleted while its Node
// lives is made again with the features ipamd declared; made empty, the
// node would look unmanaged and lose its branches after the delay.
func TestKubeCNINodeRemadeKeepsFeatures(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	const node = "rc-remade"
	h.addSGPNode(node, inst1, 9)
	ctx := context.Background()
	var first k8s.CNINode
	if err := h.admin.Get(ctx, client.ObjectKey{Name: node}, &first); err != nil {
		t.Fatal(err)
	}
	if err := h.admin.Delete(ctx, &first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "CNINode made again with its features", func() (bool, string) {
		var cn k8s.CNINode
		if err := h.admin.Get(ctx, client.ObjectKey{Name: node}, &cn); err != nil {
			return false, err.Error()
		}
		if cn.UID == first.UID {
			return false, "the old one"
		}
		if !slices.ContainsFunc(cn.Spec.Features, func(f k8s.CNINodeFeature) bool { return f.Name == k8s.FeatureSecurityGroupsForPods }) {
			t.Fatalf("CNINode made again with features %v, want %s kept", cn.Spec.Features, k8s.FeatureSecurityGroupsForPods)
		}
		return true, ""
	})
}

// TestKubeUnmanagedWhileDownDeletesBranches: the node loses SGP while the
// controller is down (or restarts within the delay), so no trunk state of
// it is ever in memory again. The node still advertising pod-eni tells
// that it was an SGP node: its branches must still be deleted and the
// capacity removed.
func TestKubeUnmanagedWhileDownDeletesBranches(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.DeinitDelay = 300 * time.Millisecond
	h := newHarness(t, w.ec2, cfg)
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const node = "rc-unmanage-down"
	h.addSGPNode(node, inst1, 9)
	if _, err := h.createPod("a", node, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	a := h.waitAnnotation("a")
	h.stop()
	h.dropSGPFeature(node)
	startController(t, h)
	waitFor(t, 30*time.Second, "the node's branch deleted", func() (bool, string) {
		ids := branchIDs(w.branches())
		return len(ids) == 0, fmt.Sprint(ids)
	})
	h.waitNoCapacity(node)
	h.waitEvent("a", ReasonBranchDeletedUnmanaged, a[0].ENIID)
}
