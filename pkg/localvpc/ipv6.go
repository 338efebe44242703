package localvpc

import (
	"errors"
	"fmt"
	"net/netip"

	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

// IPv6AgentEnv is the aws-node environment of an IPv6 cluster: IPv6 pods
// from /80 prefixes (prefix delegation is required), IPv4 egress through
// egress-cni by default (docs/compatibility.md, "IPv6 and egress-cni").
var IPv6AgentEnv = []string{"ENABLE_IPv6=true", "ENABLE_IPv4=false", "ENABLE_PREFIX_DELEGATION=true", "WARM_PREFIX_TARGET=1"}

// IPv6Scenario turns sc into an IPv6-ready one, as an EKS IPv6 cluster
// needs: every subnet gets a /64 of the VPC's /56 (in order, unless it has
// one) and every instance an IPv6 address on its primary ENI.
func IPv6Scenario(sc vpcsim.Scenario) (vpcsim.Scenario, error) {
	if len(sc.VPCs) == 0 || sc.VPCs[0].IPv6CIDR == "" {
		return sc, errors.New("IPv6 scenario: the first VPC has no ipv6Cidr")
	}
	block, err := netip.ParsePrefix(sc.VPCs[0].IPv6CIDR)
	if err != nil || !block.Addr().Is6() || block.Bits() > 56 {
		return sc, fmt.Errorf("IPv6 scenario: VPC ipv6Cidr %q is not an IPv6 block of /56 or larger", sc.VPCs[0].IPv6CIDR)
	}
	out := sc
	out.VPCs = append([]vpcsim.VPCSpec(nil), sc.VPCs...)
	v := &out.VPCs[0]
	v.Subnets = append([]vpcsim.SubnetSpec(nil), v.Subnets...)
	base := block.Masked().Addr().As16()
	for i := range v.Subnets {
		if v.Subnets[i].IPv6CIDR != "" {
			continue
		}
		b := base
		b[7] += byte(i + 1) // the i+1-th /64 of the block; ::/64 is left free
		v.Subnets[i].IPv6CIDR = netip.PrefixFrom(netip.AddrFrom16(b), 64).String()
	}
	out.Instances = append([]vpcsim.InstanceSpec(nil), sc.Instances...)
	for i := range out.Instances {
		if out.Instances[i].IPv6AddressCount == 0 {
			out.Instances[i].IPv6AddressCount = 1
		}
	}
	return out, nil
}

// VPCEchoAddrV6 is the in-VPC whoami service's IPv6 address: the VPC
// block's base address + 2 (out of every subnet the scenario gives).
func VPCEchoAddrV6(sc vpcsim.Scenario) (netip.Addr, error) {
	if len(sc.VPCs) == 0 || sc.VPCs[0].IPv6CIDR == "" {
		return netip.Addr{}, errors.New("scenario VPC has no ipv6Cidr")
	}
	p, err := netip.ParsePrefix(sc.VPCs[0].IPv6CIDR)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("VPC ipv6Cidr %q: %w", sc.VPCs[0].IPv6CIDR, err)
	}
	return p.Masked().Addr().Next().Next(), nil
}

// enableIPv6 turns IPv6 on in the data plane for the scenario's VPC.
func (v *VPC) enableIPv6() error {
	echo, err := VPCEchoAddrV6(v.cfg.Scenario)
	if err != nil {
		return fmt.Errorf("IPv6: %w", err)
	}
	block, _ := netip.ParsePrefix(v.cfg.Scenario.VPCs[0].IPv6CIDR)
	if err := v.DP.EnableIPv6(dataplane.IPv6Config{VPCBlocks: []netip.Prefix{block}, EchoAddrs: []netip.Addr{echo}}); err != nil {
		return err
	}
	v.EchoAddrV6 = echo
	return nil
}

// podAddr is the pod's address in a CNI result: its IPv4 address, or in
// an IPv6 cluster its IPv6 one.
func podAddr(r *current.Result) netip.Addr {
	var v6 netip.Addr
	for _, ipc := range r.IPs {
		a, ok := netip.AddrFromSlice(ipc.Address.IP)
		if !ok {
			continue
		}
		if a = a.Unmap(); a.Is4() {
			return a
		}
		if !v6.IsValid() {
			v6 = a
		}
	}
	return v6
}
