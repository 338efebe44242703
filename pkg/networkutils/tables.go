package networkutils

import (
	"net/netip"
)

// vpcIPv6Router is the VPC's IPv6 subnet router, the gateway of every IPv6 ENI.
var vpcIPv6Router = netip.MustParseAddr("fe80:ec2::1")

// SubnetGateway returns the VPC router of subnet: the network address + 1
// for IPv4, fe80:ec2::1 for IPv6. An invalid prefix yields the zero Addr.
func SubnetGateway(subnet netip.Prefix) netip.Addr {
	if !subnet.IsValid() {
		return netip.Addr{}
	}
	if subnet.Addr().Is6() {
		return vpcIPv6Router
	}
	return subnet.Masked().Addr().Next()
}
