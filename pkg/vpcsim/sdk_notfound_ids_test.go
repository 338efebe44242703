package vpcsim_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// A request naming several ids that do not exist is refused with one
// .NotFound error naming all of them, in the order asked and once each, as
// EC2 does ("The networkInterface ID 'eni-a, eni-b' does not exist"; for
// instances "The instance IDs 'i-a, i-b' do not exist"). Before, only the
// first was named, so a caller dropping the named ids called once per
// missing id.
func TestNotFoundNamesEveryMissingID(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	inst, err := env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	const (
		eniA, eniB       = "eni-00000000000dead0a", "eni-00000000000dead0b"
		instA, instB     = "i-00000000000dead0a", "i-00000000000dead0b"
		subnetA, subnetB = "subnet-00000000000dead0a", "subnet-00000000000dead0b"
		vpcA, vpcB       = "vpc-00000000000dead0a", "vpc-00000000000dead0b"
		sgA, sgB         = "sg-00000000000dead0a", "sg-00000000000dead0b"
		assocA, assocB   = "trunk-assoc-00000000000dead0a", "trunk-assoc-00000000000dead0b"
		ruleA, ruleB     = "sgr-00000000000dead0a", "sgr-00000000000dead0b"
	)
	cases := []struct {
		name      string
		call      func() error
		code, msg string
	}{
		{"DescribeNetworkInterfaces", func() error {
			_, err := c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eniA, inst.PrimaryENI, eniB, eniA}})
			return err
		}, "InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '" + eniA + ", " + eniB + "' does not exist"},
		{"DescribeInstances", func() error {
			_, err := c.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{InstanceIds: []string{instA, simtest.InstanceID, instB}})
			return err
		}, "InvalidInstanceID.NotFound", "The instance IDs '" + instA + ", " + instB + "' do not exist"},
		{"DescribeSubnets", func() error {
			_, err := c.DescribeSubnets(ctx(t), &ec2.DescribeSubnetsInput{SubnetIds: []string{subnetA, subnetB}})
			return err
		}, "InvalidSubnetID.NotFound", "The subnet ID '" + subnetA + ", " + subnetB + "' does not exist"},
		{"DescribeVpcs", func() error {
			_, err := c.DescribeVpcs(ctx(t), &ec2.DescribeVpcsInput{VpcIds: []string{vpcA, vpcB}})
			return err
		}, "InvalidVpcID.NotFound", "The vpc ID '" + vpcA + ", " + vpcB + "' does not exist"},
		{"DescribeSecurityGroups", func() error {
			_, err := c.DescribeSecurityGroups(ctx(t), &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sgA, simtest.SecurityGroupID, sgB}})
			return err
		}, "InvalidGroup.NotFound", "The security group '" + sgA + ", " + sgB + "' does not exist"},
		{"DescribeTrunkInterfaceAssociations", func() error {
			_, err := c.DescribeTrunkInterfaceAssociations(ctx(t), &ec2.DescribeTrunkInterfaceAssociationsInput{AssociationIds: []string{assocA, assocB}})
			return err
		}, "InvalidAssociationID.NotFound", "The association ID '" + assocA + ", " + assocB + "' does not exist"},
		{"DescribeSecurityGroupRules", func() error {
			_, err := c.DescribeSecurityGroupRules(ctx(t), &ec2.DescribeSecurityGroupRulesInput{SecurityGroupRuleIds: []string{ruleA, ruleB}})
			return err
		}, "InvalidSecurityGroupRuleId.NotFound", "The security group rule ID '" + ruleA + ", " + ruleB + "' does not exist"},
		{"TerminateInstances", func() error {
			_, err := c.TerminateInstances(ctx(t), &ec2.TerminateInstancesInput{InstanceIds: []string{instA, instB}})
			return err
		}, "InvalidInstanceID.NotFound", "The instance IDs '" + instA + ", " + instB + "' do not exist"},
		{"CreateTags", func() error {
			_, err := c.CreateTags(ctx(t), &ec2.CreateTagsInput{Resources: []string{eniA, inst.PrimaryENI, eniB}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		}, "InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '" + eniA + ", " + eniB + "' does not exist"},
		{"DeleteTags", func() error {
			_, err := c.DeleteTags(ctx(t), &ec2.DeleteTagsInput{Resources: []string{eniA, eniB}})
			return err
		}, "InvalidNetworkInterfaceID.NotFound", "The networkInterface ID '" + eniA + ", " + eniB + "' does not exist"},
		{"CreateNetworkInterface groups", func() error {
			_, err := c.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), Groups: []string{sgA, simtest.SecurityGroupID, sgB}})
			return err
		}, "InvalidGroup.NotFound", "The security group '" + sgA + ", " + sgB + "' does not exist in VPC '" + simtest.VPCID + "'"},
		{"RevokeSecurityGroupIngress rule ids", func() error {
			_, err := c.RevokeSecurityGroupIngress(ctx(t), &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(simtest.SecurityGroupID), SecurityGroupRuleIds: []string{ruleA, ruleB}})
			return err
		}, "InvalidSecurityGroupRuleId.NotFound", "The security group rule ID '" + ruleA + ", " + ruleB + "' does not exist"},
	}
	before := env.Sim.State()
	for _, tc := range cases {
		err := tc.call()
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || ae.ErrorMessage() != tc.msg {
			t.Errorf("%s: %v\nwant %s: %s", tc.name, err, tc.code, tc.msg)
		}
	}
	if after := env.Sim.State(); !reflect.DeepEqual(before, after) {
		t.Errorf("a refused request changed the account")
	}
}
