package ipamd

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// Follow-ups of the environment variable audit (docs/compatibility.md,
// "Environment variables"): upstream's behaviour that lives in pkg/ipamd.

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

// AWS_VPC_K8S_CNI_EXTERNALSNAT=true on an IPv6 node: upstream sets
// UseExternalSNAT (AddNetworkReply field 5) only in IPv4 replies, where
// SNAT exists; an IPv6 reply carries no field 5 on the wire. An IPv4
// reply still carries it.
func TestEnvExternalSNATOnlyInIPv4Replies(t *testing.T) {
	for _, ipv6 := range []bool{true, false} {
		h := newHarness(t, harnessOpts{cfg: func(c *config.Config) {
			c.ExternalSNAT = true
			if ipv6 {
				c.EnableIPv4, c.EnableIPv6, c.EnablePrefixDelegation = false, true, true
			} else {
				c.WarmIPTarget = 1
			}
		}})
		ctx := context.Background()
		h.n.PoolCycle(ctx)
		r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "a", IfName: "eth0"})
		if err != nil || !r.GetSuccess() {
			t.Fatalf("IPv6 %v: ADD %v %v", ipv6, r, err)
		}
		b, err := proto.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := hasField(t, b, 5); got == ipv6 {
			t.Errorf("IPv6 %v: reply carries UseExternalSNAT (field 5): %v, want %v", ipv6, got, !ipv6)
		}
	}
}

// hasField reports whether the encoded message b carries field num.
func hasField(t *testing.T, b []byte, num protowire.Number) bool {
	t.Helper()
	for len(b) > 0 {
		n, typ, l := protowire.ConsumeTag(b)
		if l < 0 {
			t.Fatalf("bad tag: %v", protowire.ParseError(l))
		}
		if n == num {
			return true
		}
		b = b[l:]
		m := protowire.ConsumeFieldValue(n, typ, b)
		if m < 0 {
			t.Fatalf("bad field %d: %v", n, protowire.ParseError(m))
		}
		b = b[m:]
	}
	return false
}
