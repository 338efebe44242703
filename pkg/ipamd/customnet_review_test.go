package ipamd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestCustomNetworkingLooksUpTheSubnetOnce: under custom networking each
// new ENI goes to the ENIConfig's subnet, whose CIDR ipamd needs for the
// ENI's host routes. A subnet's CIDR never changes, so ipamd asks EC2 for
// it once, not once per ENI: two ENIs, at most one DescribeSubnets.
func TestCustomNetworkingLooksUpTheSubnetOnce(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 110,
		eniConfig: ENIConfig{Name: "pods-a", Subnet: simtest.CustomSubnetAID, SecurityGroups: []string{simtest.SecurityGroup2ID}}}
	h := newHarness(t, harnessOpts{instanceType: "m5.xlarge", kube: k,
		cfg: func(c *config.Config) { c.CustomNetworking = true; c.IPCooldown = 0 }})
	before := h.calls()
	pods := map[int]bool{}
	for _, n := range []int{1, 15, 29} { // m5.xlarge, primary unused: 14 per ENI, one ENI more each step
		h.setPods(pods, n)
	}
	if got := h.simCounts(); got.ENIs < 4 {
		t.Fatalf("after 12 pods: %+v, want at least two ENIs besides the primary", got)
	}
	for _, e := range h.env.Sim.NetworkInterfaces() {
		if e.ID != h.primaryENI() && e.SubnetID != simtest.CustomSubnetAID {
			t.Errorf("ENI %s in %s, want the ENIConfig's subnet", e.ID, e.SubnetID)
		}
	}
	d := callDelta(before, h.calls())
	if d["DescribeSubnets"] > 1 {
		t.Errorf("DescribeSubnets called %d times for %d new ENIs in one subnet (calls %v)", d["DescribeSubnets"], d["CreateNetworkInterface"], d)
	}
	h.checkConsistent()
}

// TestCustomNetworkingENIConfigInAnotherAZ: an ENIConfig naming a subnet
// of another availability zone (a mislabelled node) creates no ENI: EC2
// would refuse the attach, and an ENI there would serve no pod. The cause
// names the ENIConfig, the subnet and the node's zone.
func TestCustomNetworkingENIConfigInAnotherAZ(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 110,
		eniConfig: ENIConfig{Name: "pods-b", Subnet: simtest.CustomSubnetBID}}
	h := kubeHarness(t, k, func(c *config.Config) { c.CustomNetworking = true; c.WarmIPTarget = 3 })
	before := h.calls()
	h.n.PoolCycle(context.Background())
	_, err := h.state(0)
	for _, want := range []string{"pods-b", simtest.CustomSubnetBID, "us-west-2a"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("recorded cause %v, want it to name %s", err, want)
		}
	}
	if d := callDelta(before, h.calls()); d["CreateNetworkInterface"] != 0 {
		t.Errorf("EC2 calls for an ENIConfig in another zone: %v", d)
	}
	if got := h.simCounts(); got.ENIs != 1 {
		t.Errorf("ENIs: %+v", got)
	}
}

// TestCustomNetworkingUnknownSecurityGroup: an ENIConfig listing a
// security group that does not exist: EC2 refuses the ENI; the cause names
// the ENIConfig and the group, and ipamd backs off instead of asking EC2
// again on every pool cycle.
func TestCustomNetworkingUnknownSecurityGroup(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 110,
		eniConfig: ENIConfig{Name: "pods-a", Subnet: simtest.CustomSubnetAID, SecurityGroups: []string{"sg-00000000000000ff"}}}
	times := fastTimes
	times.FailureBackoff = time.Hour
	h := newHarness(t, harnessOpts{kube: k, times: &times, cfg: func(c *config.Config) { c.CustomNetworking = true; c.WarmIPTarget = 3 }})
	before := h.calls()
	for range 5 {
		h.n.PoolCycle(context.Background())
	}
	_, err := h.state(0)
	for _, want := range []string{"pods-a", "sg-00000000000000ff"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("recorded cause %v, want it to name %s", err, want)
		}
	}
	if d := callDelta(before, h.calls()); d["CreateNetworkInterface"] != 1 {
		t.Errorf("EC2 calls over 5 pool cycles with an unknown group: %v, want one CreateNetworkInterface", d)
	}
	if got := h.simCounts(); got.ENIs != 1 {
		t.Errorf("ENIs: %+v", got)
	}
}
