package vpcsim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// An unattached ENI has no attachment, so no attachment.* filter matches it.
func TestAttachmentFiltersMatchOnlyAttachedENIs(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	loose := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})
	for _, f := range []types.Filter{
		{Name: aws.String("attachment.device-index"), Values: []string{"0"}},
		{Name: aws.String("attachment.delete-on-termination"), Values: []string{"false"}},
		{Name: aws.String("attachment.status"), Values: []string{"*"}},
		{Name: aws.String("attachment.instance-id"), Values: []string{"*"}},
	} {
		out := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{f}}))
		for _, e := range out.NetworkInterfaces {
			if aws.ToString(e.NetworkInterfaceId) == loose {
				t.Errorf("filter %s=%v matched the unattached ENI %s", aws.ToString(f.Name), f.Values, loose)
			}
			if e.Attachment == nil {
				t.Errorf("filter %s=%v matched %s, which has no attachment", aws.ToString(f.Name), f.Values, aws.ToString(e.NetworkInterfaceId))
			}
		}
	}
	// the primary ENI still matches device index 0
	out := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{
		Filters: []types.Filter{{Name: aws.String("attachment.device-index"), Values: []string{"0"}}}}))
	if len(out.NetworkInterfaces) != 1 || aws.ToString(out.NetworkInterfaces[0].Attachment.InstanceId) != simtest.InstanceID {
		t.Fatalf("attachment.device-index=0 matched %d ENIs, want the instance's primary", len(out.NetworkInterfaces))
	}
}

func TestBadNextTokenIsInvalidPaginationToken(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	_, err := c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(5), NextToken: aws.String("not-a-token")})
	wantCode(t, err, "InvalidPaginationToken")
	_, err = c.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{NextToken: aws.String("%%%")})
	wantCode(t, err, "InvalidPaginationToken")
}

// A subnet the scenario gives no ipv6Cidr has none, although the VPC has an
// IPv6 block, and an ENI in it cannot get IPv6 addresses.
func TestSubnetWithoutIPv6CIDRHasNone(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	out := must[*ec2.DescribeSubnetsOutput](t)(c.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{simtest.CustomSubnetAID, simtest.NodeSubnetID}}))
	for _, sn := range out.Subnets {
		has := len(sn.Ipv6CidrBlockAssociationSet) > 0
		if want := aws.ToString(sn.SubnetId) == simtest.NodeSubnetID; has != want {
			t.Errorf("subnet %s: IPv6 associations %v, want present=%v", aws.ToString(sn.SubnetId), sn.Ipv6CidrBlockAssociationSet, want)
		}
	}
	_, err := c.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.CustomSubnetAID), Ipv6AddressCount: aws.Int32(1)})
	if err == nil {
		t.Fatal("an ENI in a subnet without IPv6 got an IPv6 address")
	}
}

// EC2's API reference forbids ids together with MaxResults only for
// DescribeNetworkInterfaces and DescribeInstances; the other paged
// describes page through the named ids.
func TestIDsWithMaxResultsOnlyWhereEC2RefusesThem(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	five := aws.Int32(5)
	_, err := c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"eni-00000000000000001"}, MaxResults: five})
	wantCode(t, err, "InvalidParameterCombination")
	_, err = c.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{InstanceIds: []string{simtest.InstanceID}, MaxResults: five})
	wantCode(t, err, "InvalidParameterCombination")

	sn, err := c.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{simtest.NodeSubnetID, simtest.CNISubnetID}, MaxResults: five})
	if err != nil || len(sn.Subnets) != 2 {
		t.Errorf("DescribeSubnets with SubnetIds and MaxResults: %v, want the two subnets", err)
	}
	vpcs, err := c.DescribeVpcs(ctx(t), &ec2.DescribeVpcsInput{VpcIds: []string{simtest.VPCID}, MaxResults: five})
	if err != nil || len(vpcs.Vpcs) != 1 {
		t.Errorf("DescribeVpcs with VpcIds and MaxResults: %v, want the VPC", err)
	}
	trunk := newTrunk(t, c)
	branch := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})
	a, err := associate(c, t, branch, trunk, 7)
	if err != nil {
		t.Fatal(err)
	}
	as, err := c.DescribeTrunkInterfaceAssociations(ctx(t), &ec2.DescribeTrunkInterfaceAssociationsInput{AssociationIds: []string{aws.ToString(a.InterfaceAssociation.AssociationId)}, MaxResults: five})
	if err != nil || len(as.InterfaceAssociations) != 1 {
		t.Errorf("DescribeTrunkInterfaceAssociations with AssociationIds and MaxResults: %v, want the association", err)
	}
}
