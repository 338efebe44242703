package resourcecontroller

import (
	"context"
	"errors"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// TestKubeCNINodeDeletedAfterNodeKeepsFinalizer: the Node's garbage
// collection deletes its CNINode right after the Node, and the controller
// may handle the CNINode's deletion while its cache still holds the Node.
// Taking that for a CNINode deleted under a live Node (finalizer dropped,
// made again) let the gone node's ENIs leak, its cleanup never run; it
// failed CI as TestKubeNodeTerminationCleanupTimesOut. keepCNINode is
// called here as that reconcile calls it, the Node already gone from the
// API server: the finalizer must stay for the node's cleanup.
func TestKubeCNINodeDeletedAfterNodeKeepsFinalizer(t *testing.T) {
	w := newWorld(t)
	_, admin := kubeAdmin(t)
	cfg := fastConfig()
	cfg.ClusterName = "test"
	c, err := New(cfg, w.ec2)
	if err != nil {
		t.Fatal(err)
	}
	c.c, c.api = admin, admin
	ctx := context.Background()
	const name = "rc-stale-node-cache"
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{labelOS: "linux"}},
		Spec: corev1.NodeSpec{ProviderID: "aws:///us-west-2a/" + inst1}}
	if err := admin.Create(ctx, node); err != nil {
		t.Fatal(err)
	}
	cn := &k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{labelOS: "linux"},
		Finalizers: []string{CNINodeFinalizer}},
		Spec: k8s.CNINodeSpec{Tags: map[string]string{awsutils.TagInstanceID: inst1}}}
	if err := admin.Create(ctx, cn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var left k8s.CNINode
		if admin.Get(context.Background(), client.ObjectKey{Name: name}, &left) == nil {
			orig := left.DeepCopy()
			left.Finalizers = nil
			_ = admin.Patch(context.Background(), &left, client.MergeFrom(orig))
		}
	})
	if err := admin.Delete(ctx, node); err != nil {
		t.Fatal(err)
	}
	if err := admin.Delete(ctx, cn); err != nil {
		t.Fatal(err)
	}
	if err := admin.Get(ctx, client.ObjectKey{Name: name}, cn); err != nil {
		t.Fatal(err)
	}
	if err := c.keepCNINode(ctx, cn, inst1); !errors.Is(err, errCNINodeDeleting) {
		t.Errorf("keepCNINode = %v, want %v (looked at again once the cache has the Node gone)", err, errCNINodeDeleting)
	}
	if err := admin.Get(ctx, client.ObjectKey{Name: name}, cn); err != nil || !slices.Contains(cn.Finalizers, CNINodeFinalizer) {
		t.Fatalf("the CNINode of a Node gone from the API server lost its finalizer before the node's cleanup: %v %v", err, cn.Finalizers)
	}
}
