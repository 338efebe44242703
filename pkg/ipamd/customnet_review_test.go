package ipamd

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
		eniConfig: ENIConfig{Name: "pods-a", Subnet: simtest.CustomSubnetAID, SecurityGroups: []string{"sg-000000000000000ff"}}}
	times := fastTimes
	times.FailureBackoff = time.Hour
	h := newHarness(t, harnessOpts{kube: k, times: &times, cfg: func(c *config.Config) { c.CustomNetworking = true; c.WarmIPTarget = 3 }})
	before := h.calls()
	for range 5 {
		h.n.PoolCycle(context.Background())
	}
	_, err := h.state(0)
	for _, want := range []string{"pods-a", "sg-000000000000000ff"} {
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

// TestCustomNetworkingENIConfigChangesAtRuntime: the node's ENIConfig
// changes while ENIs from it are attached (its label now names another
// ENIConfig, then that one is deleted). Pods keep their addresses, the
// next ENI goes to the subnet and groups the node selects now, and while
// the node selects a missing ENIConfig no ENI is created anywhere (never
// in the node's own subnet as a fallback), the cause naming it.
func TestCustomNetworkingENIConfigChangesAtRuntime(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 110,
		eniConfig: ENIConfig{Name: "pods-a", Subnet: simtest.CustomSubnetAID, SecurityGroups: []string{simtest.SecurityGroup2ID}}}
	h := newHarness(t, harnessOpts{instanceType: "m5.xlarge", kube: k,
		cfg: func(c *config.Config) { c.CustomNetworking = true; c.IPCooldown = 0; c.WarmIPTarget = 1 }})
	pods := map[int]bool{}
	h.setPods(pods, 10)
	held := map[int]string{}
	for i := range pods {
		a, _ := h.lookup(0, podKey(i))
		held[i] = a.Addr.String()
	}

	// The label now names an ENIConfig in the same zone's node subnet
	// with the node's group.
	k.mu.Lock()
	k.eniConfig = ENIConfig{Name: "pods-a2", Subnet: simtest.CNISubnetID, SecurityGroups: []string{simtest.SecurityGroupID}}
	k.mu.Unlock()
	h.setPods(pods, 20) // 14 per ENI: the second ENI fills, a third comes
	var inNew int
	for _, e := range h.env.Sim.NetworkInterfaces() {
		switch {
		case e.ID == h.primaryENI():
		case e.SubnetID == simtest.CNISubnetID && slices.Equal(e.Groups, []string{simtest.SecurityGroupID}):
			inNew++
		case e.SubnetID != simtest.CustomSubnetAID:
			t.Errorf("ENI %s in %s with %v: neither ENIConfig's", e.ID, e.SubnetID, e.Groups)
		}
	}
	if inNew != 1 {
		t.Errorf("%d ENIs from the ENIConfig the node selects now, want 1", inNew)
	}

	// The ENIConfig is deleted while its ENI is attached.
	k.mu.Lock()
	k.eniConfig, k.eniErr = ENIConfig{Name: "pods-a2"}, errors.New(`node "n1" selects ENIConfig "pods-a2", which does not exist`)
	k.mu.Unlock()
	before := h.simCounts()
	ctx := context.Background()
	for i := range 40 { // more than the attached ENIs hold
		h.n.PoolCycle(ctx)
		actx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := h.srv.AddNetwork(actx, addReq(fmt.Sprint("late-", i)))
		cancel()
		if err != nil {
			break
		}
	}
	if got := h.simCounts(); got.ENIs != before.ENIs {
		t.Errorf("ENIs with the ENIConfig missing: %+v, before %+v", got, before)
	}
	if _, err := h.state(0); err == nil || !strings.Contains(err.Error(), "pods-a2") {
		t.Errorf("recorded cause %v, want the missing ENIConfig named", err)
	}
	for i, addr := range held {
		if a, ok := h.lookup(0, podKey(i)); !ok || a.Addr.String() != addr {
			t.Errorf("pod %d held %s, now %v (%v)", i, addr, a.Addr, ok)
		}
	}
	h.checkConsistent()
}
