package vpcsim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// EC2 leaves some empty sets out of its answers and sends others empty; the
// SDK reads an absent set as nil and an empty one as an empty slice. The
// shapes below are EC2's documented ones (the EC2 API examples and the AWS
// CLI's describe-subnets, create-network-interface, describe-network-interfaces
// and run-instances examples): an ENI always carries tagSet and
// ipv6AddressesSet, and carries ipv4PrefixSet/ipv6PrefixSet only with
// prefixes; a subnet without tags has no tagSet, but always an
// ipv6CidrBlockAssociationSet; a RunInstances instance always has a tagSet.
func TestEmptySetsAreSentAsEC2SendsThem(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	cx := ctx(t)

	created := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(cx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)}))
	id := aws.ToString(created.NetworkInterface.NetworkInterfaceId)
	described := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}}))
	for name, e := range map[string]types.NetworkInterface{"CreateNetworkInterface": *created.NetworkInterface, "DescribeNetworkInterfaces": described.NetworkInterfaces[0]} {
		if e.TagSet == nil || e.Ipv6Addresses == nil || len(e.PrivateIpAddresses) != 1 {
			t.Errorf("%s: TagSet %#v, Ipv6Addresses %#v, PrivateIpAddresses %d: want the empty sets sent and one address", name, e.TagSet, e.Ipv6Addresses, len(e.PrivateIpAddresses))
		}
		if e.Ipv4Prefixes != nil || e.Ipv6Prefixes != nil {
			t.Errorf("%s: Ipv4Prefixes %#v, Ipv6Prefixes %#v for an ENI without prefixes: want both left out (nil)", name, e.Ipv4Prefixes, e.Ipv6Prefixes)
		}
	}
	di := must[*ec2.DescribeInstancesOutput](t)(c.DescribeInstances(cx, &ec2.DescribeInstancesInput{InstanceIds: []string{simtest.InstanceID}}))
	for _, e := range di.Reservations[0].Instances[0].NetworkInterfaces {
		if e.Ipv6Addresses == nil || e.Ipv4Prefixes != nil || e.Ipv6Prefixes != nil {
			t.Errorf("instance's ENI %s: Ipv6Addresses %#v, Ipv4Prefixes %#v, Ipv6Prefixes %#v: want the first sent empty, the prefixes left out", aws.ToString(e.NetworkInterfaceId), e.Ipv6Addresses, e.Ipv4Prefixes, e.Ipv6Prefixes)
		}
	}

	// with prefixes the sets are there and read
	_ = must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), Ipv4PrefixCount: aws.Int32(1)}))
	_ = must[*ec2.AssignIpv6AddressesOutput](t)(c.AssignIpv6Addresses(cx, &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(id), Ipv6PrefixCount: aws.Int32(1)}))
	described = must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}}))
	if e := described.NetworkInterfaces[0]; len(e.Ipv4Prefixes) != 1 || aws.ToString(e.Ipv4Prefixes[0].Ipv4Prefix) == "" || len(e.Ipv6Prefixes) != 1 || aws.ToString(e.Ipv6Prefixes[0].Ipv6Prefix) == "" {
		t.Errorf("ENI with prefixes: Ipv4Prefixes %#v, Ipv6Prefixes %#v: want one of each", e.Ipv4Prefixes, e.Ipv6Prefixes)
	}

	_ = must[*ec2.DeleteTagsOutput](t)(c.DeleteTags(cx, &ec2.DeleteTagsInput{Resources: []string{simtest.CustomSubnetAID}}))
	sn := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(cx, &ec2.DescribeSubnetsInput{SubnetIds: []string{simtest.CustomSubnetAID, simtest.NodeSubnetID}}))
	for _, s := range sn.Subnets {
		switch aws.ToString(s.SubnetId) {
		case simtest.CustomSubnetAID: // no tags, no IPv6
			if s.Tags != nil || s.Ipv6CidrBlockAssociationSet == nil {
				t.Errorf("untagged IPv4-only subnet: Tags %#v, Ipv6CidrBlockAssociationSet %#v: want no tag set and an empty association set", s.Tags, s.Ipv6CidrBlockAssociationSet)
			}
		case simtest.NodeSubnetID:
			if len(s.Tags) != 1 || len(s.Ipv6CidrBlockAssociationSet) != 1 {
				t.Errorf("node subnet: Tags %#v, Ipv6CidrBlockAssociationSet %#v: want one of each", s.Tags, s.Ipv6CidrBlockAssociationSet)
			}
		}
	}

	run := must[*ec2.RunInstancesOutput](t)(c.RunInstances(cx, &ec2.RunInstancesInput{InstanceType: "m5.large", SubnetId: aws.String(simtest.NodeSubnetID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)}))
	if in := run.Instances[0]; in.Tags == nil {
		t.Errorf("RunInstances without tags: Tags nil, want an empty tag set")
	}
}
