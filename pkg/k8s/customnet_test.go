package k8s

import (
	"context"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
)

// The custom-networking guide's layout, as the end-to-end run sets it up:
// nodes labelled with their zone, ENI_CONFIG_LABEL_DEF=topology.kubernetes.io/zone,
// one ENIConfig per AZ naming a 100.64.0.0/16 subnet (vpcsim's Basic
// scenario ids). Each node resolves its own AZ's subnet, and declares
// CustomNetworking=<ENIConfig> on its CNINode when pod ENIs are on too.
func TestCustomNetworkingPerZone(t *testing.T) {
	env, admin := testEnv(t)
	ctx := context.Background()
	const zone = "topology.kubernetes.io/zone"
	createENIConfig(t, admin, "us-west-2a", "subnet-00000000000000004", "sg-00000000000000001")
	createENIConfig(t, admin, "us-west-2b", "subnet-00000000000000005", "sg-00000000000000002")
	for node, az := range map[string]string{"cn-node-a": "us-west-2a", "cn-node-b": "us-west-2b"} {
		t.Run(node, func(t *testing.T) {
			createNode(t, admin, node, map[string]string{zone: az}, nil)
			cn := &CNINode{}
			cn.Name = node
			if err := admin.Create(ctx, cn); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = admin.Delete(ctx, cn) })
			c := newClient(t, env, Config{
				NodeName: node, Features: Features{CustomNetworking: true, PodENI: true},
				ENIConfigSelector: eniconfig.Selector{LabelKey: zone},
			})
			got, err := c.ENIConfigForNode(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{"us-west-2a": "subnet-00000000000000004", "us-west-2b": "subnet-00000000000000005"}[az]
			if got.Name != az || got.Spec.Subnet != want || got.Source != eniconfig.SourceLabel || got.Key != zone {
				t.Fatalf("got %+v, want ENIConfig %s with subnet %s by label %s", got, az, want, zone)
			}
			eventually(t, "declare CustomNetworking", func() error {
				return c.AddCNINodeFeature(ctx, FeatureCustomNetworking, got.Name)
			})
			var after CNINode
			if err := admin.Get(ctx, keyOf(node), &after); err != nil {
				t.Fatal(err)
			}
			if len(after.Spec.Features) != 1 || after.Spec.Features[0] != (CNINodeFeature{Name: FeatureCustomNetworking, Value: az}) {
				t.Errorf("CNINode features = %+v", after.Spec.Features)
			}
		})
	}
}
