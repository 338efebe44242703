package ipamd

import (
	"context"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
)

// startKubeAdmin starts the Kubernetes tier, or skips the test without
// it, with the ENIConfig and CNINode CRDs applied, and returns it with an
// admin client.
func startKubeAdmin(ctx context.Context, t *testing.T) (*kubeenv.Env, client.Client) {
	t.Helper()
	kenv := kubeenv.Start(t)
	if err := kenv.Apply(ctx, filepath.Join("..", "..", "misc", "crd-eniconfig.yaml"), filepath.Join("..", "..", "misc", "crd-cninode.yaml")); err != nil {
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
	return kenv, admin
}
