package ipamd

import (
	"context"
	"net/netip"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/rpc"
)

const branchAnnotationV6 = `[{"eniId":"eni-branch1","ifAddress":"02:00:00:aa:bb:01","privateIp":"10.0.0.77",` +
	`"ipv6Addr":"2600:1f14:aaaa:bb00::77","vlanID":3,"subnetCidr":"10.0.0.0/20","subnetV6Cidr":"2600:1f14:aaaa:bb00::/64"}]`

// TestIPv6TrunkENI: ENABLE_POD_ENI on an IPv6 node. The trunk the VPC
// resource controller attaches has no IPv6 address (it asks for none), so
// its link is set up by its IPv4 address, with no rule of its own; that
// breaks nothing, since branch pods route through their VLAN's table, not
// the trunk's. The trunk gets no /80 (only pool ENIs serve pods), and a
// branch pod is handed its IPv6 address, the VPC router fe80:ec2::1 as
// gateway, its VLAN and the trunk's link; its DEL hands them back.
func TestIPv6TrunkENI(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 29, pods: map[string]PodInfo{
		"default/sgpp": {Found: true, UID: "u1", WantsBranchENI: true, BranchAnnotation: branchAnnotationV6},
	}}
	h := newHarness(t, harnessOpts{scenario: withTrunk, kube: k, cfg: func(c *config.Config) {
		c.EnableIPv4, c.EnableIPv6, c.EnablePrefixDelegation = false, true, true
		c.EnablePodENI = true
	}})
	ctx := context.Background()
	h.settle()
	inst, err := h.env.Sim.Instance("i-00000000000000001")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range inst.ENIs {
		if e.InterfaceType == "trunk" && (len(e.IPv6Prefixes) != 0 || len(e.Prefixes) != 0 || len(e.SecondaryIPs) != 0) {
			t.Errorf("the trunk ENI was given pod addresses: %+v", e)
		}
	}
	trunk, ok := h.host.enis[netip.MustParseAddr("10.0.0.5")]
	if !ok || !trunk.Trunk || trunk.DeviceNumber != 1 {
		t.Fatalf("trunk ENI's host setup: %+v (all: %v)", trunk, h.host.enis)
	}
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "c-sgpp", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "sgpp"})
	if err != nil {
		t.Fatal(err)
	}
	md := r.IpAllocationMetadata[0]
	if !r.Success || md.Ipv6Addr != "2600:1f14:aaaa:bb00::77" || md.Ipv4Addr != "" || md.DeviceNumber != -1 ||
		r.PodVlanId != 3 || r.PodEniSubnetGw != "fe80:ec2::1" || r.ParentIfIndex != 11 {
		t.Errorf("IPv6 branch reply: %v", r)
	}
	d, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "c-sgpp", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "sgpp", K8SPodUid: "u1"})
	if err != nil || d.PodVlanId != 3 || d.IpAllocationMetadata[0].Ipv6Addr != "2600:1f14:aaaa:bb00::77" {
		t.Errorf("IPv6 branch DEL: %v %v", d, err)
	}
	h.checkConsistent()
}
