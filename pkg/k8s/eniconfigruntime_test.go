package k8s

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/eniconfig"
)

// While ipamd runs: the node's label moves to another ENIConfig, that
// ENIConfig's security groups are edited and then emptied (the node's
// primary groups then apply), and finally it is deleted. Each change is
// seen by the next resolution, without a restart.
func TestENIConfigChangesWhileRunning(t *testing.T) {
	env, admin := testEnv(t)
	ctx := context.Background()
	const node = "runtime-eniconfig"
	createENIConfig(t, admin, "rt-first", "subnet-0000000a", "sg-0000000a")
	createENIConfig(t, admin, "rt-second", "subnet-0000000b", "sg-0000000b")
	n := createNode(t, admin, node, map[string]string{eniconfig.DefaultKey: "rt-first"}, nil)
	c := newClient(t, env, Config{NodeName: node, Features: Features{CustomNetworking: true}})
	want := func(name, subnet string, sgs ...string) func() error {
		return func() error {
			got, err := c.ENIConfigForNode(ctx)
			if err != nil {
				return err
			}
			if got.Name != name || got.Spec.Subnet != subnet || !slices.Equal(got.Spec.SecurityGroups, sgs) {
				return fmt.Errorf("got %s %s %v, want %s %s %v", got.Name, got.Spec.Subnet, got.Spec.SecurityGroups, name, subnet, sgs)
			}
			return nil
		}
	}
	eventually(t, "first", want("rt-first", "subnet-0000000a", "sg-0000000a"))

	n.Labels[eniconfig.DefaultKey] = "rt-second"
	if err := admin.Update(ctx, n); err != nil {
		t.Fatal(err)
	}
	eventually(t, "label moved", want("rt-second", "subnet-0000000b", "sg-0000000b"))

	var ec eniconfig.ENIConfig
	if err := admin.Get(ctx, client.ObjectKey{Name: "rt-second"}, &ec); err != nil {
		t.Fatal(err)
	}
	ec.Spec.SecurityGroups = []string{"sg-0000000c", "sg-0000000d"}
	if err := admin.Update(ctx, &ec); err != nil {
		t.Fatal(err)
	}
	eventually(t, "groups edited", want("rt-second", "subnet-0000000b", "sg-0000000c", "sg-0000000d"))
	ec.Spec.SecurityGroups = nil
	if err := admin.Update(ctx, &ec); err != nil {
		t.Fatal(err)
	}
	eventually(t, "groups emptied", want("rt-second", "subnet-0000000b"))

	if err := admin.Delete(ctx, &ec); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deleted", func() error {
		if _, err := c.ENIConfigForNode(ctx); !errors.Is(err, ErrENIConfigNotFound) {
			return fmt.Errorf("want ErrENIConfigNotFound, got %v", err)
		}
		return nil
	})
}
