package ipamd

import (
	"context"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestUnmanagedENIGoneFreesItsSlot: an unmanaged ENI (no_manage tag) takes
// one of the instance's ENI slots while attached. Once its owner detaches
// and deletes it, the reconcile gives the slot back: the pool grows onto
// it instead of staying one ENI short until ipamd restarts.
func TestUnmanagedENIGoneFreesItsSlot(t *testing.T) {
	const foreign = "eni-000000000000f0e19"
	h := newHarness(t, harnessOpts{noInit: true, scenario: func(sc *vpcsim.Scenario) {
		sc.NetworkInterfaces = append(sc.NetworkInterfaces, vpcsim.ENISpec{
			ID: foreign, Subnet: simtest.NodeSubnetID, AttachTo: simtest.InstanceID, DeviceIndex: 1,
			SecondaryIPCount: 3, Tags: map[string]string{"node.k8s.amazonaws.com/no_manage": "true"},
		})
	}, cfg: func(c *config.Config) { c.WarmIPTarget = 20 }})
	ctx := context.Background()
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	h.settle()
	if got := h.simCounts().ENIs; got != 3 {
		t.Fatalf("%d ENIs attached, want m5.large's 3 (one unmanaged)", got)
	}
	// Its owner takes it away.
	if err := h.ec2.FreeENI(ctx, foreign, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Reconcile(ctx); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if u := h.pool(0).Unmanaged; len(u) != 0 {
		t.Errorf("unmanaged ENIs after the reconcile: %v, want none", u)
	}
	h.settle()
	// WARM_IP_TARGET=20 fits now: three managed ENIs, 20 addresses.
	if got := h.simCounts(); got.ENIs != 3 || got.IPs != 20 {
		t.Errorf("EC2 after the foreign ENI left: %+v, want 3 ENIs with 20 addresses", got)
	}
	h.checkConsistent()
}
