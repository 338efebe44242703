package ipamd

import (
	"context"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestExcludedNodeSubnetAskedOnce: ENABLE_SUBNET_DISCOVERY=false and the
// node's subnet tagged kubernetes.io/role/cni=0, with pods wanting more
// addresses than the primary ENI holds. No ENI is created, and ipamd reads
// the subnet's tags from EC2 once for its subnet-cache lifetime, not once
// per attempt: 20 pool cycles past their failure backoff, at most one
// DescribeSubnets. Before, every attempt listed the subnets again.
func TestExcludedNodeSubnetAskedOnce(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true, scenario: func(sc *vpcsim.Scenario) {
		sc.VPCs[0].Subnets[0].Tags["kubernetes.io/role/cni"] = "0"
	}, cfg: func(c *config.Config) {
		c.EnableSubnetDiscovery = false
		c.MinimumIPTarget = 12 // m5.large: the primary ENI holds 9, so a second ENI is needed
	}})
	ctx := context.Background()
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	before := h.calls()
	for range 20 { // fastTimes: the failure backoff is over by the next cycle
		h.n.PoolCycle(ctx)
	}
	if got := h.simCounts(); got.ENIs != 1 {
		t.Errorf("ENIs %+v, want the primary alone", got)
	}
	d := callDelta(before, h.calls())
	if d["CreateNetworkInterface"] != 0 || d["DescribeSubnets"] > 1 {
		t.Errorf("EC2 calls over 20 pool cycles with the node's subnet excluded: %v, want no CreateNetworkInterface and at most one DescribeSubnets", d)
	}
}

// TestNoEligibleSubnetAskedOnce: subnet discovery on, the node's subnet
// tagged kubernetes.io/role/cni=0 and no other subnet of its zone tagged
// for pods. No ENI is created, and the discovery answer ("no eligible
// subnet") is kept for the subnet-cache lifetime like any other: 20 pool
// cycles past their failure backoff, at most one DescribeSubnets. Before,
// every attempt listed the subnets again.
func TestNoEligibleSubnetAskedOnce(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true, scenario: func(sc *vpcsim.Scenario) {
		for i := range sc.VPCs[0].Subnets {
			if sc.VPCs[0].Subnets[i].Tags == nil {
				sc.VPCs[0].Subnets[i].Tags = map[string]string{}
			}
			sc.VPCs[0].Subnets[i].Tags["kubernetes.io/role/cni"] = "0"
		}
	}, cfg: func(c *config.Config) {
		c.EnableSubnetDiscovery = true
		c.MinimumIPTarget = 12 // m5.large: the primary ENI holds 9, so a second ENI is needed
	}})
	ctx := context.Background()
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	before := h.calls()
	for range 20 { // fastTimes: the failure backoff is over by the next cycle
		h.n.PoolCycle(ctx)
	}
	if got := h.simCounts(); got.ENIs != 1 {
		t.Errorf("ENIs %+v, want the primary alone", got)
	}
	d := callDelta(before, h.calls())
	if d["CreateNetworkInterface"] != 0 || d["DescribeSubnets"] > 1 {
		t.Errorf("EC2 calls over 20 pool cycles with no eligible subnet: %v, want no CreateNetworkInterface and at most one DescribeSubnets", d)
	}
}
