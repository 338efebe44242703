package ipamd

import (
	"context"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestSubnetDiscoveryMovesOnWhenSubnetFull: with ENABLE_SUBNET_DISCOVERY a
// new ENI goes to the eligible subnet with the most free addresses, and to
// the next one when that is full.
func TestSubnetDiscoveryMovesOnWhenSubnetFull(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmENITarget = 2 }})
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "CreateNetworkInterface", Code: awsutils.CodeInsufficientFreeAddresses, Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(context.Background())
	var subnets []string
	for _, e := range h.env.Sim.NetworkInterfaces() {
		subnets = append(subnets, e.SubnetID)
	}
	if len(subnets) != 2 {
		t.Fatalf("ENIs: %v", subnets)
	}
	// Eligible: the node's subnet and the CNI-tagged one (most free
	// addresses, tried first and "full" here); untagged others never.
	if subnets[1] != simtest.NodeSubnetID {
		t.Errorf("second ENI in %s, want the node subnet after the CNI subnet was full", subnets[1])
	}
	if d := h.env.Sim.Stats().Errors["CreateNetworkInterface"][awsutils.CodeInsufficientFreeAddresses]; d != 1 {
		t.Errorf("the CNI subnet was not tried first (%d insufficient-address errors)", d)
	}
	h.checkConsistent()
}

// TestExcludedNodeSubnet: the node's subnet is tagged
// kubernetes.io/role/cni=0, so the primary ENI serves no pod: its unused
// addresses are released and pods get addresses from an ENI in the
// CNI-tagged subnet.
func TestExcludedNodeSubnet(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true, scenario: func(sc *vpcsim.Scenario) {
		sc.VPCs[0].Subnets[0].Tags["kubernetes.io/role/cni"] = "0"
	}, cfg: func(c *config.Config) { c.WarmIPTarget = 3 }})
	ctx := context.Background()
	if _, err := h.ec2.AssignIPv4(ctx, h.primaryENI(), 2); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	h.settle()
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if len(inst.ENIs) != 2 || len(inst.ENIs[0].SecondaryIPs) != 0 || inst.ENIs[1].SubnetID != simtest.CNISubnetID || len(inst.ENIs[1].SecondaryIPs) != 3 {
		t.Errorf("ENIs: %+v", inst.ENIs)
	}
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "x", IfName: "eth0"})
	if err != nil || r.IpAllocationMetadata[0].DeviceNumber != 1 {
		t.Errorf("pod: %v %v", r, err)
	}
	h.checkConsistent()
}

// TestPrefixFallbackOnInsufficientCidrBlocks: when EC2 has no free /28 in
// the subnet, the card serves pods from /32 secondary addresses.
func TestPrefixFallbackOnInsufficientCidrBlocks(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) {
		c.EnablePrefixDelegation, c.WarmPrefixTarget, c.WarmIPTarget = true, 1, 3
	}})
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "AssignPrivateIpAddresses", Code: awsutils.CodeInsufficientCidrBlocks, Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(context.Background())
	if got := h.simCounts(); got.Prefixes != 0 || got.IPs != 3 {
		t.Errorf("after InsufficientCidrBlocks: %+v, want 3 secondary addresses", got)
	}
	r, err := h.srv.AddNetwork(context.Background(), &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "x", IfName: "eth0"})
	if err != nil || !strings.HasPrefix(r.IpAllocationMetadata[0].Ipv4Addr, "10.0.") {
		t.Errorf("pod after fallback: %v %v", r, err)
	}
	h.checkConsistent()
}

// TestPrefixFallbackWhenCreatingENI: a prefix-delegation node whose ENIs
// are full gets InsufficientCidrBlocks from CreateNetworkInterface; it
// creates the next ENI with /32 secondary addresses instead of cooling
// down for 120 s and retrying prefixes, and the pods get addresses.
func TestPrefixFallbackWhenCreatingENI(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "t3.small", cfg: func(c *config.Config) {
		c.EnablePrefixDelegation, c.WarmIPTarget, c.MaxPodsOverride, c.IPCooldown = true, 1, 110, 0
		c.EnableSubnetDiscovery = false // one subnet, so its InsufficientCidrBlocks is final
	}})
	pods := map[int]bool{}
	// The primary ENI holds 3 /28s (48 addresses): 47 pods and one warm.
	// One ADD at a time: ADDs waiting together on an assign may be given
	// a second ENI beside it, which this test's premise rules out.
	for n := 1; n <= 47; n++ {
		h.setPods(pods, n)
	}
	if got := h.simCounts(); got.ENIs != 1 || got.Prefixes != 3 {
		t.Fatalf("before: %+v, want the primary ENI full of prefixes", got)
	}
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "CreateNetworkInterface", Code: awsutils.CodeInsufficientCidrBlocks, Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	h.setPods(pods, 50)
	if n := h.env.Sim.Stats().Errors["CreateNetworkInterface"][awsutils.CodeInsufficientCidrBlocks]; n != 1 {
		t.Fatalf("InsufficientCidrBlocks answered %d times, want 1", n)
	}
	if got := h.simCounts(); got.ENIs != 2 || got.IPs < 2 || got.Prefixes != 3 {
		t.Errorf("after the fallback: %+v, want a second ENI with secondary IPs next to the 3 prefixes", got)
	}
	h.checkConsistent()
}

// TestPrefixFallbackReleasesEmptyPrefixes: a card falls back to /32s
// (InsufficientCidrBlocks) while its primary ENI is full of empty
// prefixes. Those prefixes hold the slots the /32s need and serve no pod
// in /32 mode, so they are released and the pods get /32 addresses.
func TestPrefixFallbackReleasesEmptyPrefixes(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "t3.small", cfg: func(c *config.Config) {
		c.EnablePrefixDelegation, c.WarmPrefixTarget, c.MaxPodsOverride, c.IPCooldown = true, 3, 110, 0
		c.EnableSubnetDiscovery = false // one subnet, so its InsufficientCidrBlocks is final
	}})
	h.settle()
	if got := h.simCounts(); got.ENIs != 1 || got.Prefixes != 3 {
		t.Fatalf("before: %+v, want the primary ENI full of prefixes", got)
	}
	// Restarted with a fourth warm prefix, the card must create an ENI for
	// it, and EC2 has no free /28 left.
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "CreateNetworkInterface", Code: awsutils.CodeInsufficientCidrBlocks, Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	h.cfg.WarmPrefixTarget = 4
	h.connect(fastTimes)
	if err := h.n.Init(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(context.Background())
	if n := h.env.Sim.Stats().Errors["CreateNetworkInterface"][awsutils.CodeInsufficientCidrBlocks]; n != 1 {
		t.Fatalf("InsufficientCidrBlocks answered %d times, want 1", n)
	}
	if mode := h.n.Introspection().Pool().Mode; mode != "secondary-ip" {
		t.Errorf("mode after InsufficientCidrBlocks %q, want secondary-ip", mode)
	}
	pods := map[int]bool{}
	h.setPods(pods, 9) // t3.small on /32s: 3 ENIs of 3 secondary addresses
	if got := h.simCounts(); got.ENIs != 3 || got.Prefixes != 0 || got.IPs != 9 {
		t.Errorf("after the fallback: %+v, want 3 ENIs of /32s and no prefix left", got)
	}
	h.checkConsistent()
}
