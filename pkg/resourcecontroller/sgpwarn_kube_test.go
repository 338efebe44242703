package resourcecontroller

import (
	"context"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/apis/vpcresources/v1beta1"
)

type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(code int, agent, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

// TestKubeBrokenPolicyWarnsOnPodCreate: a policy whose selector cannot be
// evaluated (the schema takes any operator, e.g. a lower-case "in") selects
// nothing, so the pods it was written for run with the node's security
// groups. The one moment a user is looking is the pod's creation: the
// webhook answers it with a warning naming the policy and why (kubectl
// prints it), for matching and non-matching pods alike.
func TestKubeBrokenPolicyWarnsOnPodCreate(t *testing.T) {
	h := newHarness(t, newWorld(t).ec2, fastConfig())
	ctx := context.Background()
	broken := &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Name: "typo", Namespace: h.ns},
		Spec: v1beta1.SecurityGroupPolicySpec{
			PodSelector:    &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "role", Operator: "in", Values: []string{"db-client"}}}},
			SecurityGroups: v1beta1.GroupIDs{Groups: []string{sgDB}}}}
	if err := h.admin.Create(ctx, broken); err != nil {
		t.Fatal(err)
	}
	h.addPolicy("web", map[string]string{"role": "web"}, sgCustom)
	cfg := *h.env.Config
	w := &warnings{}
	cfg.WarningHandler = w
	cl, err := client.New(&cfg, client.Options{Scheme: h.admin.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"db-client", "web"} {
		w.mu.Lock()
		w.msgs = nil
		w.mu.Unlock()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: role, Namespace: h.ns, Labels: map[string]string{"role": role}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "none"}}}}
		if err := cl.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		w.mu.Lock()
		got := strings.Join(w.msgs, "\n")
		w.mu.Unlock()
		if !strings.Contains(got, "typo") || !strings.Contains(got, `"in"`) {
			t.Errorf("pod %s: warnings %q, want one naming policy typo and its operator", role, got)
		}
	}
}
