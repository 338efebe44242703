package ipamd

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
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

// ENABLE_SUBNET_DISCOVERY=false puts new ENIs in the node's subnet only,
// and upstream still refuses that subnet when it is tagged
// kubernetes.io/role/cni=0: no ENI is created, the cause names the subnet
// and the tag. When EC2 cannot list subnets (no ec2:DescribeSubnets),
// upstream ignores the check and uses the node's subnet; so does ipamd.
func TestEnvNoSubnetDiscoveryHonoursExcludedNodeSubnet(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tag      string // kubernetes.io/role/cni on the node's subnet ("" = absent)
		listFail bool   // DescribeSubnets refused
		wantENIs int
	}{
		{"tagged cni=0", "0", false, 1},
		{"tagged cni=0, DescribeSubnets refused", "0", true, 2},
		{"untagged", "", false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{noInit: true, scenario: func(sc *vpcsim.Scenario) {
				if tc.tag != "" {
					sc.VPCs[0].Subnets[0].Tags["kubernetes.io/role/cni"] = tc.tag
				}
			}, cfg: func(c *config.Config) {
				c.EnableSubnetDiscovery = false
				c.MinimumIPTarget = 12 // m5.large: the primary ENI holds 9, so a second ENI is needed
			}})
			ctx := context.Background()
			if _, err := h.ec2.AssignIPv4(ctx, h.primaryENI(), 9); err != nil {
				t.Fatal(err)
			}
			if err := h.n.Init(ctx); err != nil {
				t.Fatal(err)
			}
			if tc.listFail {
				if err := h.env.Sim.SetFaults(vpcsimFaults("DescribeSubnets", "UnauthorizedOperation")); err != nil {
					t.Fatal(err)
				}
			}
			for range 3 {
				h.n.PoolCycle(ctx)
			}
			if got := h.simCounts(); got.ENIs != tc.wantENIs {
				t.Errorf("ENIs %+v, want %d", got, tc.wantENIs)
			}
			for _, e := range h.env.Sim.NetworkInterfaces() {
				if e.SubnetID != simtest.NodeSubnetID {
					t.Errorf("ENI %s in %s, want the node's subnet", e.ID, e.SubnetID)
				}
			}
			if tc.wantENIs == 1 {
				_, err := h.state(0)
				for _, want := range []string{simtest.NodeSubnetID, "kubernetes.io/role/cni", "ENABLE_SUBNET_DISCOVERY=false"} {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Errorf("recorded cause %v, want it to name %s", err, want)
					}
				}
			}
		})
	}
}
