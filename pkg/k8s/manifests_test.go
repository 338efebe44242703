package k8s

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
)

// Every object of every manifest in misc/ is accepted by the API server's
// validation and admission (server-side apply, DryRun=All).
func TestManifestsServerSideDryRun(t *testing.T) {
	_, admin := testEnv(t) // CRDs applied, so ENIConfig/CNINode objects validate too
	files, err := filepath.Glob(miscPath("*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found only %d manifests in misc/: %v", len(files), files)
	}
	ctx := context.Background()
	seen := map[string]bool{}
	for _, f := range files {
		objs, err := kubeenv.ReadManifest(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			what := fmt.Sprintf("%s: %s %s", filepath.Base(f), o.GetKind(), o.GetName())
			err := admin.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.DryRunAll, client.FieldOwner("vpc-cni-manifest-test"), client.ForceOwnership)
			if err != nil {
				t.Errorf("%s rejected: %v", what, err)
				continue
			}
			seen[o.GetKind()+"/"+o.GetName()] = true
			t.Logf("%s accepted", what)
		}
	}
	for _, want := range []string{
		"CustomResourceDefinition/eniconfigs.crd.k8s.amazonaws.com", "CustomResourceDefinition/cninodes.vpcresources.k8s.aws",
		"ServiceAccount/aws-node", "ClusterRole/aws-node", "ClusterRoleBinding/aws-node", "DaemonSet/aws-node",
		"ClusterRole/aws-node-annotate-pod-ip",
	} {
		if !seen[want] {
			t.Errorf("%s missing from misc/ or rejected", want)
		}
	}

	// The dry run really validates: a broken DaemonSet is refused.
	objs, _ := kubeenv.ReadManifest(miscPath("aws-k8s-cni.yaml"))
	for _, o := range objs {
		if o.GetKind() != "DaemonSet" {
			continue
		}
		bad := o.DeepCopy()
		if err := unstructured.SetNestedField(bad.Object, "Sometimes", "spec", "template", "spec", "restartPolicy"); err != nil {
			t.Fatal(err)
		}
		if err := admin.Apply(ctx, client.ApplyConfigurationFromUnstructured(bad), client.DryRunAll, client.FieldOwner("vpc-cni-manifest-test"), client.ForceOwnership); err == nil {
			t.Error("a DaemonSet with restartPolicy Sometimes passed the dry run")
		}
	}
}

// The shipped RBAC is enough for everything ipamd does, and pod patches need
// the separate ANNOTATE_POD_IP role: the client runs as the aws-node service
// account with a token from the TokenRequest API.
func TestRBACIsSufficientAndLeast(t *testing.T) {
	env, admin := testEnv(t)
	ctx := context.Background()
	if err := applyManifests(env, "aws-k8s-cni.yaml"); err != nil {
		t.Fatal(err)
	}
	const node = "rbac-node"
	createNode(t, admin, node, map[string]string{eniconfig.DefaultKey: "rbac"}, nil)
	createENIConfig(t, admin, "rbac", "subnet-0abc0abc")
	awsNode := createPod(t, admin, "kube-system", "aws-node-rbac", node)
	workload := createPod(t, admin, "default", "rbac-workload", node)
	cn := &CNINode{ObjectMeta: metav1.ObjectMeta{Name: node}}
	if err := admin.Create(ctx, cn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Delete(ctx, cn) })

	sa, err := env.ServiceAccountConfig(ctx, "kube-system", "aws-node")
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, env, Config{
		RESTConfig: sa, NodeName: node, PodName: awsNode.Name,
		Features: Features{CustomNetworking: true, PodENI: true, AnnotatePodIP: true},
	})
	if err := c.WaitForAPIServer(ctx); err != nil {
		t.Fatalf("WaitForAPIServer as aws-node: %v", err)
	}
	if got, err := c.ENIConfigForNode(ctx); err != nil || got.Spec.Subnet != "subnet-0abc0abc" {
		t.Fatalf("ENIConfigForNode as aws-node: %+v %v", got, err)
	}
	eventually(t, "CNINode patch as aws-node", func() error {
		return c.AddCNINodeFeature(ctx, FeatureSecurityGroupsForPods, "")
	})
	c.Eventf(ctx, corev1.EventTypeWarning, ReasonMissingIAMPermissions, "rbac test: %s", "ec2:AssignPrivateIpAddresses")
	if len(eventsFor(t, admin, awsNode, ReasonMissingIAMPermissions)) != 1 {
		t.Error("event as aws-node not recorded")
	}
	if err := c.AnnotatePodIP(ctx, "default", workload.Name, "10.1.2.3"); !apierrors.IsForbidden(err) {
		t.Fatalf("pod patch without the ANNOTATE_POD_IP role: want Forbidden, got %v", err)
	}
	if err := applyManifests(env, "rbac-annotate-pod-ip.yaml"); err != nil {
		t.Fatal(err)
	}
	// The shared API server outlives this run: without the role removed a
	// rerun (go test -count=2) finds pod patches allowed from the start.
	t.Cleanup(func() {
		objs, err := kubeenv.ReadManifest(miscPath("rbac-annotate-pod-ip.yaml"))
		if err != nil {
			t.Error(err)
			return
		}
		for _, o := range objs {
			if err := admin.Delete(ctx, o); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("remove %s %s: %v", o.GetKind(), o.GetName(), err)
			}
		}
	})
	eventually(t, "pod patch with the ANNOTATE_POD_IP role", func() error {
		return c.AnnotatePodIP(ctx, "default", workload.Name, "10.1.2.3")
	})
}
