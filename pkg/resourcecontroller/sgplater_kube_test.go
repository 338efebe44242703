package resourcecontroller

import (
	"context"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// A node whose CNINode was made again without SecurityGroupsForPods is
// unmanaged until the feature is declared on it; once it is, the node gets
// its trunk and its pods their branches, as on EKS: a CNINode change
// reconciles its owner Node (setup.go).

// servedOnceDeclared creates a branch pod on node, which has no SGP yet,
// declares the feature, and waits for the node's capacity and the pod's
// branch.
func servedOnceDeclared(t *testing.T, h *harness, node string) {
	t.Helper()
	if _, err := h.createPod("early", node, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	h.declareSGP(node)
	h.waitCapacity(node, 9)
	h.waitAnnotation("early")
	if _, err := h.createPod("later", node, map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	h.waitAnnotation("later")
}

// TestKubeNodeRemadeWithoutSGPServedOnceDeclared: an SGP Node is deleted
// with its CNINode and registered again for its instance after its
// cleanup; its new CNINode has no feature. Once the feature is declared,
// the node advertises pod-eni again, and its pods get their branches: one
// made before the declaration and one after.
func TestKubeNodeRemadeWithoutSGPServedOnceDeclared(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const name = "rc-remade-later"
	h.addSGPNode(name, inst1, 9)
	first := h.waitCNINode(name, "")
	h.deleteNode(name)
	waitFor(t, 30*time.Second, "the deleted node's CNINode gone and its trunk state dropped", func() (bool, string) {
		err := h.admin.Get(context.Background(), client.ObjectKey{Name: name}, &k8s.CNINode{})
		_, held := h.ctrl.reg.info(name)
		return apierrors.IsNotFound(err) && !held, fmt.Sprint(err, held)
	})
	h.addNode(name, inst1, nil)
	remade := h.waitCNINode(name, string(first.UID))
	if len(remade.Spec.Features) != 0 {
		t.Fatalf("the remade CNINode has features %v, want none", remade.Spec.Features)
	}
	servedOnceDeclared(t, h, name)
}

// TestKubeCNINodeRemadeWithoutSGPServedOnceDeclared: the CNINode of a
// live Node without SGP is deleted and made again (without feature, as
// the old one had none); the feature declared later must still make it
// an SGP node.
func TestKubeCNINodeRemadeWithoutSGPServedOnceDeclared(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const name = "rc-cn-remade-later"
	h.addNode(name, inst2, nil)
	first := h.waitCNINode(name, "")
	cn := first
	if err := h.admin.Delete(context.Background(), &cn); err != nil {
		t.Fatal(err)
	}
	h.waitCNINode(name, string(first.UID))
	servedOnceDeclared(t, h, name)
}
