package ipamd

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// hostAddress is the address and subnet an ENI's link and route table are
// set up with (networkutils.ENI): in IPv6 mode its first IPv6 address in
// its subnet's IPv6 CIDR, as upstream, since the pods on the ENI look its
// table up by their from-pod rule and need its IPv6 default route there;
// else its primary IPv4 in v4, the subnet's IPv4 CIDR. The same address is
// remembered for the ENI's teardown. An IPv6 ENI that cannot be set up so
// (no IPv6 address of its own, as a trunk may have; its subnet's IPv6 CIDR
// not found) is set up by its IPv4 as before, with a warning: its pods
// then have no IPv6 route through it, but the node starts. A trunk ENI
// serves no pod through its own table (branch pods use their VLAN's), so
// its IPv4 setup is only noted.
func (f *subnetFinder) hostAddress(ctx context.Context, e awsutils.ENI, v4 netip.Prefix) (netip.Addr, netip.Prefix) {
	if !f.cfg.EnableIPv6 {
		return e.PrivateIPv4, v4
	}
	addr, sub, err := f.ipv6HostAddress(ctx, e)
	if err != nil && e.InterfaceType == "trunk" {
		f.log.Info("trunk ENI set up on the host by its IPv4 address (branch pods route through their VLAN's table)", "eni", e.ID, "reason", err)
		return e.PrivateIPv4, v4
	}
	if err != nil {
		f.log.Warn("ENI set up on the host by its IPv4 address: pods on it have no IPv6 route through it", "eni", e.ID, "err", err)
		return e.PrivateIPv4, v4
	}
	return addr, sub
}

func (f *subnetFinder) ipv6HostAddress(ctx context.Context, e awsutils.ENI) (netip.Addr, netip.Prefix, error) {
	if len(e.IPv6) == 0 {
		return netip.Addr{}, netip.Prefix{}, fmt.Errorf("ENI %s has no IPv6 address", e.ID)
	}
	sub, err := f.cidr6(ctx, e.SubnetID)
	if err != nil {
		return netip.Addr{}, netip.Prefix{}, err
	}
	if !sub.Contains(e.IPv6[0]) {
		return netip.Addr{}, netip.Prefix{}, fmt.Errorf("ENI %s's IPv6 address %s is outside its subnet %s's IPv6 CIDR %s", e.ID, e.IPv6[0], e.SubnetID, sub)
	}
	return e.IPv6[0], sub, nil
}

// cidr6 finds a subnet's IPv6 CIDR: one EC2 listed before, else through
// the subnet lister (EC2 never changes it while the subnet holds ENIs).
func (f *subnetFinder) cidr6(ctx context.Context, subnetID string) (netip.Prefix, error) {
	if p, ok := f.knownCIDR6(subnetID); ok {
		return p, nil
	}
	subs, err := f.lister.Subnets(ctx, f.node.vpcID, f.node.id.AZ)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("finding the IPv6 CIDR of subnet %s: %w", subnetID, err)
	}
	f.learnCIDRs(subs)
	if p, ok := f.knownCIDR6(subnetID); ok {
		return p, nil
	}
	return netip.Prefix{}, fmt.Errorf("subnet %s has no IPv6 CIDR EC2 lists (VPC %s, availability zone %s)",
		subnetID, f.node.vpcID, f.node.id.AZ)
}

func (f *subnetFinder) knownCIDR6(subnetID string) (netip.Prefix, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.cidrs6[subnetID]
	return p, ok
}
