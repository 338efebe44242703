package awsutils

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// AssignIPv4 adds count secondary private IPv4 addresses to an ENI and
// returns the addresses EC2 chose.
func (e *EC2) AssignIPv4(ctx context.Context, eniID string, count int) ([]netip.Addr, error) {
	if count < 1 {
		return nil, fmt.Errorf("assigning IPv4 addresses to %s: count %d must be at least 1", eniID, count)
	}
	out, err := e.api.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId:             aws.String(eniID),
		SecondaryPrivateIpAddressCount: aws.Int32(int32(count)),
	})
	if err != nil {
		return nil, fmt.Errorf("assigning %d IPv4 addresses to %s: %w", count, eniID, err)
	}
	return assignedAddrs(eniID, out)
}

func assignedAddrs(eniID string, out *ec2.AssignPrivateIpAddressesOutput) ([]netip.Addr, error) {
	return parseEach("AssignPrivateIpAddresses on "+eniID, out.AssignedPrivateIpAddresses,
		func(a types.AssignedPrivateIpAddress) string { return aws.ToString(a.PrivateIpAddress) }, parseAddr)
}

// AssignIPv4Prefixes adds count /28 prefixes to an ENI and returns them.
func (e *EC2) AssignIPv4Prefixes(ctx context.Context, eniID string, count int) ([]netip.Prefix, error) {
	if count < 1 {
		return nil, fmt.Errorf("assigning IPv4 prefixes to %s: count %d must be at least 1", eniID, count)
	}
	out, err := e.api.AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(eniID),
		Ipv4PrefixCount:    aws.Int32(int32(count)),
	})
	if err != nil {
		return nil, fmt.Errorf("assigning %d IPv4 prefixes to %s: %w", count, eniID, err)
	}
	return parseEach("AssignPrivateIpAddresses on "+eniID, out.AssignedIpv4Prefixes,
		func(p types.Ipv4PrefixSpecification) string { return aws.ToString(p.Ipv4Prefix) }, parsePrefix)
}

// UnassignIPv4 releases secondary IPv4 addresses of an ENI.
func (e *EC2) UnassignIPv4(ctx context.Context, eniID string, addrs []netip.Addr) error {
	strs, err := addrStrings(addrs, true)
	if err != nil {
		return fmt.Errorf("unassigning IPv4 addresses from %s: %w", eniID, err)
	}
	return e.unassign(ctx, "IPv4 addresses", strs, &ec2.UnassignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(eniID), PrivateIpAddresses: strs})
}

// UnassignIPv4Prefixes releases /28 prefixes of an ENI.
func (e *EC2) UnassignIPv4Prefixes(ctx context.Context, eniID string, prefixes []netip.Prefix) error {
	strs, err := prefixStrings(prefixes, true)
	if err != nil {
		return fmt.Errorf("unassigning IPv4 prefixes from %s: %w", eniID, err)
	}
	return e.unassign(ctx, "IPv4 prefixes", strs, &ec2.UnassignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(eniID), Ipv4Prefixes: strs})
}

// unassign sends in, which releases strs; nothing to release sends nothing.
func (e *EC2) unassign(ctx context.Context, what string, strs []string, in *ec2.UnassignPrivateIpAddressesInput) error {
	if len(strs) == 0 {
		return nil
	}
	if _, err := e.api.UnassignPrivateIpAddresses(ctx, in); err != nil {
		return fmt.Errorf("unassigning %s %v from %s: %w", what, strs, aws.ToString(in.NetworkInterfaceId), err)
	}
	return nil
}

// AssignIPv6Prefixes adds count /80 IPv6 prefixes to an ENI and returns them.
func (e *EC2) AssignIPv6Prefixes(ctx context.Context, eniID string, count int) ([]netip.Prefix, error) {
	if count < 1 {
		return nil, fmt.Errorf("assigning IPv6 prefixes to %s: count %d must be at least 1", eniID, count)
	}
	out, err := e.api.AssignIpv6Addresses(ctx, &ec2.AssignIpv6AddressesInput{
		NetworkInterfaceId: aws.String(eniID),
		Ipv6PrefixCount:    aws.Int32(int32(count)),
	})
	if err != nil {
		return nil, fmt.Errorf("assigning %d IPv6 prefixes to %s: %w", count, eniID, err)
	}
	return parseEach("AssignIpv6Addresses on "+eniID, out.AssignedIpv6Prefixes,
		func(s string) string { return s }, parsePrefix)
}

func addrStrings(addrs []netip.Addr, v4 bool) ([]string, error) {
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if !a.IsValid() || a.Is4() != v4 {
			return nil, fmt.Errorf("address %v is not a valid %s address", a, family(v4))
		}
		out = append(out, a.String())
	}
	return out, nil
}

func prefixStrings(ps []netip.Prefix, v4 bool) ([]string, error) {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if !p.IsValid() || p.Addr().Is4() != v4 {
			return nil, fmt.Errorf("prefix %v is not a valid %s prefix", p, family(v4))
		}
		out = append(out, p.Masked().String())
	}
	return out, nil
}

func family(v4 bool) string {
	if v4 {
		return "IPv4"
	}
	return "IPv6"
}
