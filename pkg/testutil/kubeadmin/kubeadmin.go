// Package kubeadmin gives node-side tests an admin client of the
// Kubernetes tier that knows this repository's CRDs. It sits apart from
// kubeenv because it imports pkg/k8s, whose own tests import kubeenv.
package kubeadmin

import (
	"context"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
)

// Client applies the ENIConfig and CNINode CRDs (misc/ under root, the
// repository as seen from the test's package) to kenv and returns a
// client with pkg/k8s's scheme.
func Client(ctx context.Context, t testing.TB, kenv *kubeenv.Env, root string) client.Client {
	t.Helper()
	misc := filepath.Join(root, "misc")
	if err := kenv.Apply(ctx, filepath.Join(misc, "crd-eniconfig.yaml"), filepath.Join(misc, "crd-cninode.yaml")); err != nil {
		t.Fatal(err)
	}
	scheme, err := k8s.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := client.New(kenv.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	return admin
}
