package resourcecontroller

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/apis/vpcresources/v1beta1"
	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// rbacKinds are the objects of the manifest that grant the controller's
// service account its permissions.
var rbacKinds = []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

// TestKubeRBACManifestUnderOwnerReferencesEnforcement runs the controller
// as the manifest's service account, holding only what
// misc/vpc-resource-controller.yaml grants it, on an API server with the
// OwnerReferencesPermissionEnforcement admission plugin (on in some
// distributions): setting blockOwnerDeletion on the CNINode's owner
// reference to its Node then needs update on nodes/finalizers. Everything
// the controller does must work: the webhook's caBundle, leader election,
// the CNINode, trunk and capacity, the ENIConfig subnet, the webhook's
// mutation, branches with a service-account-selected policy, the
// annotation, events, the ConfigMap cool-down, and a gone node's cleanup.
func TestKubeRBACManifestUnderOwnerReferencesEnforcement(t *testing.T) {
	apiserverBin, etcdBin, err := kubeenv.Binaries()
	if err != nil {
		t.Skip(err.Error())
	}
	ctx := context.Background()
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	env, err := kubeenv.StartProcessesWith(sctx, apiserverBin, etcdBin, kubeenv.Options{AdmissionPlugins: []string{"OwnerReferencesPermissionEnforcement"}})
	cancel()
	if err != nil {
		t.Fatalf("kubeenv: %v", err)
	}
	t.Cleanup(env.Stop)
	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	for _, add := range []func(*runtime.Scheme) error{admissionregistrationv1.AddToScheme, coordinationv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	misc := filepath.Join("..", "..", "misc")
	if err := env.Apply(ctx, filepath.Join(misc, "crd-cninode.yaml"), filepath.Join(misc, "crd-eniconfig.yaml"), filepath.Join(misc, "crd-securitygrouppolicy.yaml")); err != nil {
		t.Fatal(err)
	}
	objs, err := kubeenv.ReadManifest(filepath.Join(misc, "vpc-resource-controller.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var applied []string
	for _, o := range objs {
		if !slices.Contains(rbacKinds, o.GetKind()) {
			continue
		}
		if err := admin.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("manifest %s %s: %v", o.GetKind(), o.GetName(), err)
		}
		applied = append(applied, o.GetKind()+"/"+o.GetName())
	}
	if !slices.Contains(applied, "ClusterRole/vpc-resource-controller") || !slices.Contains(applied, "ClusterRoleBinding/vpc-resource-controller") {
		t.Fatalf("manifest RBAC objects %v, want the controller's ClusterRole and its binding", applied)
	}
	as, err := env.ServiceAccountConfig(ctx, "kube-system", "vpc-resource-controller")
	if err != nil {
		t.Fatal(err)
	}

	// The caBundle of the webhook configuration, two replicas in turn:
	// the second one asks whether the first one's pod still exists.
	hook := WebhookConfiguration("vpc-resource-mutating-webhook", "https://127.0.0.1:1/mutate", nil, map[string]string{"rc-test": "none"})
	if err := admin.Create(ctx, hook); err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(as)
	if err != nil {
		t.Fatal(err)
	}
	var liveMu sync.Mutex
	var liveErrs []error
	live := func(ctx context.Context, owner string) bool {
		_, err := cs.CoreV1().Pods("kube-system").Get(ctx, owner, metav1.GetOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			liveMu.Lock()
			liveErrs = append(liveErrs, err)
			liveMu.Unlock()
		}
		return !apierrors.IsNotFound(err)
	}
	for _, owner := range []string{"replica-a", "replica-b"} {
		_, caPEM, err := GenerateServingCertFor(owner, []string{"vpc-resource-controller-webhook.kube-system.svc"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := InjectCABundle(ctx, cs, hook.Name, caPEM, live); err != nil {
			t.Fatalf("as the controller's service account: %v", err)
		}
	}
	if len(liveErrs) > 0 {
		t.Fatalf("reading a replica's pod as the controller's service account: %v", liveErrs)
	}

	w := newWorld(t)
	ns := "rbac-owner-refs"
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{"rc-test": ns}}}); err != nil {
		t.Fatal(err)
	}
	cfg := fastConfig()
	cfg.CooldownFloor = time.Second
	h := &harness{t: t, env: env, admin: admin, ec2: w.ec2, ns: ns, cfg: cfg, leaseNS: "kube-system", as: as, earlier: defaultEvents(t, admin)}
	t.Cleanup(h.cleanup)
	startController(t, h)

	ec := &eniconfig.ENIConfig{ObjectMeta: metav1.ObjectMeta{Name: "rbac-custom"}, Spec: eniconfig.Spec{Subnet: simtest.CustomSubnetAID, SecurityGroups: []string{sgCustom}}}
	if err := admin.Create(ctx, ec); err != nil {
		t.Fatal(err)
	}
	h.addNode("rc-rbac-1", inst1, nil)
	h.addNode("rc-rbac-2", inst2, nil)
	h.declareSGP("rc-rbac-1") // fails unless the CNINode, owned by its Node, was made
	h.declareSGP("rc-rbac-2", k8s.CNINodeFeature{Name: k8s.FeatureCustomNetworking, Value: ec.Name})
	h.waitCapacity("rc-rbac-1", 9)
	h.waitCapacity("rc-rbac-2", 9)
	h.waitNodeEvents("rc-rbac-1", ReasonNodeTrunkInitiated, 1)
	var lease coordinationv1.Lease
	if err := admin.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: LeaseName}, &lease); err != nil || lease.Spec.HolderIdentity == nil {
		t.Fatalf("leader-election lease %s in kube-system: %v %+v", LeaseName, err, lease.Spec)
	}

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ConfigMapNamespace, Name: ConfigMapName}, Data: map[string]string{CooldownKey: "3"}}
	if err := admin.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	if msgs := h.waitNodeEvents("rc-rbac-1", ReasonCooldownUpdated, 1); !strings.HasSuffix(msgs[0], "updated to 3s") {
		t.Fatalf("%s events %q, want the ConfigMap's 3s", ReasonCooldownUpdated, msgs)
	}

	// A policy that selects by service account too: the controller reads
	// the ServiceAccount's labels.
	if err := admin.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app", Labels: map[string]string{"team": "db"}}}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &v1beta1.SecurityGroupPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
		Spec: v1beta1.SecurityGroupPolicySpec{
			PodSelector:            &metav1.LabelSelector{MatchLabels: map[string]string{"role": "db-client"}},
			ServiceAccountSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "db"}},
			SecurityGroups:         v1beta1.GroupIDs{Groups: []string{sgDB}},
		}}); err != nil {
		t.Fatal(err)
	}
	for pod, node := range map[string]string{"a": "rc-rbac-1", "b": "rc-rbac-2"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns, Labels: map[string]string{"role": "db-client"}},
			Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: "app", Containers: []corev1.Container{{Name: "c", Image: "none"}}}}
		if err := admin.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		if BranchCount(p) != 1 {
			t.Fatalf("pod %s was not mutated by the webhook: requests %v", pod, p.Spec.Containers[0].Resources.Requests)
		}
	}
	a, b := h.waitAnnotation("a"), h.waitAnnotation("b")
	if b[0].SubnetCIDR != "100.64.0.0/19" {
		t.Fatalf("pod b's branch %+v, want the ENIConfig's subnet", b[0])
	}
	for _, pod := range []string{"a", "b"} {
		h.waitEvent(pod, ReasonSecurityGroupRequested, sgDB)
		h.waitEvent(pod, ReasonResourceAllocated, "eni-")
	}
	for _, br := range w.branches() {
		if !slices.Equal(br.Groups, []string{sgDB}) {
			t.Fatalf("branch %s groups %v, want the policy's", br.ID, br.Groups)
		}
	}

	h.deletePod("a")
	waitFor(t, 30*time.Second, "pod a's branch deleted after the cool-down", func() (bool, string) {
		ids := branchIDs(w.branches())
		return !slices.Contains(ids, a[0].ENIID), fmt.Sprint(ids)
	})
	// A gone node: its CNINode's finalizer is removed once its branch is
	// deleted (the test API server runs no garbage collector: the test
	// deletes the CNINode as it would).
	h.deleteNode("rc-rbac-2")
	waitFor(t, 30*time.Second, "the deleted node's CNINode released and its branch deleted", func() (bool, string) {
		cn := &k8s.CNINode{}
		err := admin.Get(ctx, client.ObjectKey{Name: "rc-rbac-2"}, cn)
		ids := branchIDs(w.branches())
		return apierrors.IsNotFound(err) && !slices.Contains(ids, b[0].ENIID), fmt.Sprint(err, cn.Finalizers, ids)
	})
}
