package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// TestKubeCNINodeGoneWhileDownKeepsSGP: an SGP node's CNINode goes while
// no controller holds it (its finalizer removed by hand to unstick it, or
// by a replica that stopped before making it again), so the features
// ipamd declared are in no memory. ipamd declares SecurityGroupsForPods
// only until its trunk is attached, so nobody declares it again. The node
// still advertising pod-eni tells that it is an SGP node: the CNINode must
// be made again with the feature, the running pod must keep its branch and
// a new pod must get one.
func TestKubeCNINodeGoneWhileDownKeepsSGP(t *testing.T) {
	w := newWorld(t)
	cfg := fastConfig()
	cfg.DeinitDelay = 300 * time.Millisecond
	h := newHarness(t, w.ec2, cfg)
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const node = "rc-cninode-gone-down"
	h.addSGPNode(node, inst1, 9)
	if _, err := h.createPod("a", node, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	a := h.waitAnnotation("a")
	h.stop()

	ctx := context.Background()
	cn := &k8s.CNINode{}
	if err := h.admin.Get(ctx, client.ObjectKey{Name: node}, cn); err != nil {
		t.Fatal(err)
	}
	old := cn.UID
	orig := cn.DeepCopy()
	cn.Finalizers = nil
	if err := h.admin.Patch(ctx, cn, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	if err := h.admin.Delete(ctx, cn); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the CNINode gone", func() (bool, string) {
		err := h.admin.Get(ctx, client.ObjectKey{Name: node}, &k8s.CNINode{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})

	startController(t, h)
	waitFor(t, 30*time.Second, "the CNINode made again", func() (bool, string) {
		var cn k8s.CNINode
		err := h.admin.Get(ctx, client.ObjectKey{Name: node}, &cn)
		return err == nil && cn.UID != old, fmt.Sprint(err)
	})
	// A new pod getting a branch shows the node is managed again; by then
	// an unmanage (DeinitDelay after the first reconcile) would have run.
	if _, err := h.createPod("b", node, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	h.waitAnnotation("b")
	if err := h.admin.Get(ctx, client.ObjectKey{Name: node}, cn); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(cn.Spec.Features, func(f k8s.CNINodeFeature) bool { return f.Name == k8s.FeatureSecurityGroupsForPods }) {
		t.Errorf("CNINode made again with features %v, want %s", cn.Spec.Features, k8s.FeatureSecurityGroupsForPods)
	}
	for _, e := range w.branches() {
		if e.ID == a[0].ENIID {
			if e.Status != "in-use" {
				t.Fatalf("pod a's branch %s is %s, want in-use", e.ID, e.Status)
			}
			return
		}
	}
	t.Fatalf("pod a's branch %s was deleted; branches now %v", a[0].ENIID, branchIDs(w.branches()))
}
