package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// waitCNINode waits until node's CNINode exists, not being deleted, with
// the controller's finalizer, and of another uid than not.
func (h *harness) waitCNINode(node, not string) k8s.CNINode {
	h.t.Helper()
	var cn k8s.CNINode
	waitFor(h.t, 30*time.Second, "CNINode "+node, func() (bool, string) {
		if err := h.admin.Get(context.Background(), client.ObjectKey{Name: node}, &cn); err != nil {
			return false, err.Error()
		}
		ok := string(cn.UID) != not && cn.DeletionTimestamp == nil && slices.Contains(cn.Finalizers, CNINodeFinalizer)
		return ok, fmt.Sprintf("uid %s deleting %v finalizers %v", cn.UID, cn.DeletionTimestamp, cn.Finalizers)
	})
	return cn
}

// TestKubeCNINodeDeletionNotSeenIsTold: a CNINode of a live Node is
// deleted, but another finalizer holds it after the controller removed
// its own. Past 3 s the CNINode gets a Warning CNINodeDeletionFailed (as
// on EKS), and once it goes it is made again. Before, the controller
// waited in silence.
func TestKubeCNINodeDeletionNotSeenIsTold(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	ctx := context.Background()
	const hold = "example.com/hold"
	h.addNode("rc-held", inst1, nil)
	first := h.waitCNINode("rc-held", "")
	release := func() {
		var cn k8s.CNINode
		if err := h.admin.Get(ctx, client.ObjectKey{Name: "rc-held"}, &cn); err != nil {
			return
		}
		orig := cn.DeepCopy()
		cn.Finalizers = slices.DeleteFunc(cn.Finalizers, func(f string) bool { return f == hold })
		_ = h.admin.Patch(ctx, &cn, client.MergeFrom(orig))
	}
	t.Cleanup(release)
	orig := first.DeepCopy()
	first.Finalizers = append(first.Finalizers, hold)
	if err := h.admin.Patch(ctx, &first, client.MergeFrom(orig)); err != nil {
		t.Fatal(err)
	}
	if err := h.admin.Delete(ctx, &first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "event CNINodeDeletionFailed on CNINode rc-held", func() (bool, string) {
		var l corev1.EventList
		if err := h.admin.List(ctx, &l, client.InNamespace(metav1.NamespaceDefault)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range l.Items {
			if e.InvolvedObject.Kind == "CNINode" && e.InvolvedObject.Name == "rc-held" && h.ours(e) {
				seen = append(seen, e.Reason)
				if e.Reason == ReasonCNINodeDeletionFailed && e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, hold) {
					return true, ""
				}
			}
		}
		return false, fmt.Sprint(seen)
	})
	release()
	h.waitCNINode("rc-held", string(first.UID))
}

// TestKubeCNINodeRecreationFailureIsTold: a CNINode of a live Node is
// deleted and the API server refuses its new one (an admission policy).
// The Node gets a Warning CNINodeCreationFailed (as on EKS), and the
// CNINode is made once the API server lets it. Before, the failure was
// only in the controller's log.
func TestKubeCNINodeRecreationFailureIsTold(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	ctx := context.Background()
	const node = "rc-nocreate"
	h.addNode(node, inst1, nil)
	first := h.waitCNINode(node, "")
	fail := admissionregistrationv1.Fail
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "rc-deny-cninode"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: &fail,
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{
					Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
					Rule:       admissionregistrationv1.Rule{APIGroups: []string{"vpcresources.k8s.aws"}, APIVersions: []string{"v1alpha1"}, Resources: []string{"cninodes"}},
				},
			}}},
			Validations: []admissionregistrationv1.Validation{{Expression: "!object.metadata.name.startsWith('" + node + "')", Message: "test: no CNINode " + node}},
		},
	}
	binding := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "rc-deny-cninode"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName: policy.Name, ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
	for _, o := range []client.Object{policy, binding} {
		if err := h.admin.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	unbind := func() {
		if err := h.admin.Delete(ctx, binding); err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	}
	t.Cleanup(func() {
		unbind()
		_ = h.admin.Delete(ctx, policy)
	})
	waitFor(t, 30*time.Second, "the admission policy in force", func() (bool, string) {
		probe := &k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: node + "-probe"}}
		err := h.admin.Create(ctx, probe, client.DryRunAll)
		return err != nil && strings.Contains(err.Error(), "test: no CNINode"), fmt.Sprint(err)
	})
	if err := h.admin.Delete(ctx, &first); err != nil {
		t.Fatal(err)
	}
	msgs := h.waitNodeEvents(node, ReasonCNINodeCreationFailed, 1)
	if !strings.Contains(msgs[0], "test: no CNINode") {
		t.Errorf("CNINodeCreationFailed %q does not name the API server's refusal", msgs[0])
	}
	unbind()
	h.waitCNINode(node, string(first.UID))
}
