package ipamd

import (
	"context"
	"net/netip"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// Follow-ups of the environment variable audit (docs/compatibility.md,
// "Environment variables"): behaviour upstream-behaviour.md states that
// lives in pkg/ipamd.

// AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG=true on a node whose primary ENI
// already holds /28 prefixes (prefix delegation used before custom
// networking was turned on): upstream never loads those prefixes, so pods
// get addresses from ENIs in the ENIConfig's subnet only, never from the
// node's subnet. Neither the start nor a reconcile may load them.
func TestEnvCustomNetworkingIgnoresPrimaryPrefixes(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 110,
		eniConfig: ENIConfig{Name: "pods-a", Subnet: simtest.CustomSubnetAID, SecurityGroups: []string{simtest.SecurityGroup2ID}}}
	h := newHarness(t, harnessOpts{noInit: true, kube: k, cfg: func(c *config.Config) {
		c.CustomNetworking = true
		c.EnablePrefixDelegation, c.WarmPrefixTarget = true, 1
		c.IPCooldown = 0
	}})
	ctx := context.Background()
	primary := h.primaryENI()
	onPrimary, err := h.ec2.AssignIPv4Prefixes(ctx, primary, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if e, ok := h.eni(0, primary); !ok || len(e.CIDRs) != 0 {
		t.Errorf("primary ENI in the pool with CIDRs %+v (present %v), want none under custom networking", e.CIDRs, ok)
	}
	pods := map[int]bool{}
	h.setPods(pods, 3)
	if err := h.n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	h.setPods(pods, 6)
	subnetOf := map[string]string{}
	for _, e := range h.env.Sim.NetworkInterfaces() {
		subnetOf[e.ID] = e.SubnetID
	}
	custom := netip.MustParsePrefix("100.64.0.0/19") // simtest.CustomSubnetAID
	for i := range pods {
		a, ok := h.lookup(0, podKey(i))
		if !ok {
			t.Fatalf("pod %d holds no address", i)
		}
		for _, p := range onPrimary {
			if p.Contains(a.Addr) {
				t.Errorf("pod %d got %s from the primary ENI's prefix %s (node subnet)", i, a.Addr, p)
			}
		}
		if !custom.Contains(a.Addr) {
			t.Errorf("pod %d got %s, outside the ENIConfig's subnet %s", i, a.Addr, custom)
		}
	}
	if e, ok := h.eni(0, primary); ok && len(e.CIDRs) != 0 {
		t.Errorf("after a reconcile the primary ENI has CIDRs %+v in the pool", e.CIDRs)
	}
}
