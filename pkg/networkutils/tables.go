package networkutils

import (
	"net/netip"
)

// MainTable is the kernel's main routing table (the primary ENI's table).
const MainTable = 254

// Rule priorities this package and the plugin share (upstream-compatible).
const (
	PriorityLocalStrict     = 20
	PriorityToPod           = 512
	PriorityFwmark          = 1024
	PriorityExternalService = 1535
	PriorityFromPod         = 1536
	PriorityENI             = 32765
)

// RouteTable returns the route table of device d on network card n:
// card 0 device 0 is main, card 0 device d>0 is d+1, and card n>0 uses
// 10000+d+100·n (the Amazon Linux ec2-net-utils numbering).
func RouteTable(networkCard, device int) int {
	if networkCard == 0 {
		if device == 0 {
			return MainTable
		}
		return device + 1
	}
	return 10000 + device + 100*networkCard
}

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
