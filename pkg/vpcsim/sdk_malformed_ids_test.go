package vpcsim_test

import (
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// malformedIDs are ids of prefix that EC2 refuses by shape: a well-formed
// one is the prefix, '-', then 8 or 17 lowercase hex digits.
func malformedIDs(prefix string) []string {
	return []string{
		prefix + "-zzz",
		prefix + "-",
		prefix + "-0123456789ABCDEF0",  // upper case
		prefix + "-0123456789abcdef",   // 16 digits
		prefix + "-0123456789abcdef01", // 18 digits
		prefix + "-0123456",            // 7 digits
		prefix + "-0123456789abcdefg",  // 17, not hex
		"nope",
	}
}

// unknownIDs are well formed and name nothing.
func unknownIDs(prefix string) []string {
	return []string{prefix + "-0123456789abcdef0", prefix + "-0123abcd"}
}

// Every action that takes an EC2 id answers an id not of EC2's shape with
// the kind's .Malformed code (HTTP 400), before any lookup and without
// changing anything, and a well-formed unknown id with .NotFound.
func TestMalformedIDsAnswerMalformed(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	cx := ctx(t)
	eni := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})
	trunk := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), InterfaceType: types.NetworkInterfaceCreationTypeTrunk})
	if _, err := attach(c, t, trunk, 1); err != nil {
		t.Fatal(err)
	}
	branch := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), InterfaceType: types.NetworkInterfaceCreationTypeBranch})
	sg, inst, vpc, subnet := simtest.SecurityGroupID, simtest.InstanceID, simtest.VPCID, simtest.NodeSubnetID
	perm := []types.IpPermission{tcp(80, "10.0.0.0/8")}
	groupPerm := func(id string) []types.IpPermission {
		return []types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(81), ToPort: aws.Int32(81), UserIdGroupPairs: []types.UserIdGroupPair{{GroupId: aws.String(id)}}}}
	}
	// Where a call also names an existing resource, it would change that
	// resource if the malformed id were checked only after the lookups.
	cases := []struct {
		action, prefix      string
		malformed, notFound string
		call                func(id string) error
	}{
		{"DescribeNetworkInterfaces", "eni", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", func(id string) error {
			_, err := c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{eni, id}})
			return err
		}},
		{"DescribeInstances", "i", "InvalidInstanceID.Malformed", "InvalidInstanceID.NotFound", func(id string) error {
			_, err := c.DescribeInstances(cx, &ec2.DescribeInstancesInput{InstanceIds: []string{inst, id}})
			return err
		}},
		{"DescribeSubnets", "subnet", "InvalidSubnetID.Malformed", "InvalidSubnetID.NotFound", func(id string) error {
			_, err := c.DescribeSubnets(cx, &ec2.DescribeSubnetsInput{SubnetIds: []string{subnet, id}})
			return err
		}},
		{"DescribeVpcs", "vpc", "InvalidVpcID.Malformed", "InvalidVpcID.NotFound", func(id string) error {
			_, err := c.DescribeVpcs(cx, &ec2.DescribeVpcsInput{VpcIds: []string{vpc, id}})
			return err
		}},
		{"DescribeSecurityGroups", "sg", "InvalidGroupId.Malformed", "InvalidGroup.NotFound", func(id string) error {
			_, err := c.DescribeSecurityGroups(cx, &ec2.DescribeSecurityGroupsInput{GroupIds: []string{sg, id}})
			return err
		}},
		{"DescribeSecurityGroupRules", "sgr", "InvalidSecurityGroupRuleId.Malformed", "InvalidSecurityGroupRuleId.NotFound", func(id string) error {
			_, err := c.DescribeSecurityGroupRules(cx, &ec2.DescribeSecurityGroupRulesInput{SecurityGroupRuleIds: []string{id}})
			return err
		}},
		{"DescribeTrunkInterfaceAssociations", "trunk-assoc", "InvalidAssociationID.Malformed", "InvalidAssociationID.NotFound", func(id string) error {
			_, err := c.DescribeTrunkInterfaceAssociations(cx, &ec2.DescribeTrunkInterfaceAssociationsInput{AssociationIds: []string{id}})
			return err
		}},
		{"CreateNetworkInterface SubnetId", "subnet", "InvalidSubnetID.Malformed", "InvalidSubnetID.NotFound", func(id string) error {
			_, err := c.CreateNetworkInterface(cx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(id)})
			return err
		}},
		{"CreateNetworkInterface SecurityGroupId", "sg", "InvalidGroupId.Malformed", "InvalidGroup.NotFound", func(id string) error {
			_, err := c.CreateNetworkInterface(cx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(subnet), Groups: []string{sg, id}})
			return err
		}},
		{"AttachNetworkInterface NetworkInterfaceId", "eni", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", func(id string) error {
			_, err := attach(c, t, id, 2)
			return err
		}},
		{"AttachNetworkInterface InstanceId", "i", "InvalidInstanceID.Malformed", "InvalidInstanceID.NotFound", func(id string) error {
			_, err := c.AttachNetworkInterface(cx, &ec2.AttachNetworkInterfaceInput{NetworkInterfaceId: aws.String(eni), InstanceId: aws.String(id), DeviceIndex: aws.Int32(2)})
			return err
		}},
		{"DetachNetworkInterface", "eni-attach", "InvalidNetworkInterfaceAttachmentId.Malformed", "InvalidAttachmentID.NotFound", func(id string) error {
			_, err := c.DetachNetworkInterface(cx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(id)})
			return err
		}},
		{"DeleteNetworkInterface", "eni", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", func(id string) error {
			_, err := c.DeleteNetworkInterface(cx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)})
			return err
		}},
		{"ModifyNetworkInterfaceAttribute NetworkInterfaceId", "eni", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", func(id string) error {
			_, err := c.ModifyNetworkInterfaceAttribute(cx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(id), Description: &types.AttributeValue{Value: aws.String("x")}})
			return err
		}},
		{"ModifyNetworkInterfaceAttribute AttachmentId", "eni-attach", "InvalidNetworkInterfaceAttachmentId.Malformed", "InvalidAttachmentID.NotFound", func(id string) error {
			_, err := c.ModifyNetworkInterfaceAttribute(cx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(trunk),
				Attachment: &types.NetworkInterfaceAttachmentChanges{AttachmentId: aws.String(id), DeleteOnTermination: aws.Bool(true)}})
			return err
		}},
		{"ModifyNetworkInterfaceAttribute SecurityGroupId", "sg", "InvalidGroupId.Malformed", "InvalidGroup.NotFound", func(id string) error {
			_, err := c.ModifyNetworkInterfaceAttribute(cx, &ec2.ModifyNetworkInterfaceAttributeInput{NetworkInterfaceId: aws.String(eni), Groups: []string{sg, id}})
			return err
		}},
		{"AssignPrivateIpAddresses", "eni", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", func(id string) error {
			_, err := c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), SecondaryPrivateIpAddressCount: aws.Int32(1)})
			return err
		}},
		{"UnassignPrivateIpAddresses", "eni", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", func(id string) error {
			_, err := c.UnassignPrivateIpAddresses(cx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), PrivateIpAddresses: []string{"10.0.0.99"}})
			return err
		}},
		{"AssignIpv6Addresses", "eni", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", func(id string) error {
			_, err := c.AssignIpv6Addresses(cx, &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(id), Ipv6AddressCount: aws.Int32(1)})
			return err
		}},
		{"UnassignIpv6Addresses", "eni", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", func(id string) error {
			_, err := c.UnassignIpv6Addresses(cx, &ec2.UnassignIpv6AddressesInput{NetworkInterfaceId: aws.String(id), Ipv6Addresses: []string{"2600:1f14:abc:de00::99"}})
			return err
		}},
		{"RunInstances SubnetId", "subnet", "InvalidSubnetID.Malformed", "InvalidSubnetID.NotFound", func(id string) error {
			_, err := c.RunInstances(cx, &ec2.RunInstancesInput{InstanceType: "m5.large", SubnetId: aws.String(id), MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
			return err
		}},
		{"RunInstances SecurityGroupId", "sg", "InvalidGroupId.Malformed", "InvalidGroup.NotFound", func(id string) error {
			_, err := c.RunInstances(cx, &ec2.RunInstancesInput{InstanceType: "m5.large", SubnetId: aws.String(subnet), SecurityGroupIds: []string{sg, id}, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
			return err
		}},
		{"ModifyInstanceMetadataOptions", "i", "InvalidInstanceID.Malformed", "InvalidInstanceID.NotFound", func(id string) error {
			_, err := c.ModifyInstanceMetadataOptions(cx, &ec2.ModifyInstanceMetadataOptionsInput{InstanceId: aws.String(id), HttpTokens: types.HttpTokensStateRequired})
			return err
		}},
		{"TerminateInstances", "i", "InvalidInstanceID.Malformed", "InvalidInstanceID.NotFound", func(id string) error {
			_, err := c.TerminateInstances(cx, &ec2.TerminateInstancesInput{InstanceIds: []string{inst, id}})
			return err
		}},
		{"AssociateTrunkInterface BranchInterfaceId", "eni", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", func(id string) error {
			_, err := associate(c, t, id, trunk, 5)
			return err
		}},
		{"AssociateTrunkInterface TrunkInterfaceId", "eni", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", func(id string) error {
			_, err := associate(c, t, branch, id, 5)
			return err
		}},
		{"DisassociateTrunkInterface", "trunk-assoc", "InvalidAssociationID.Malformed", "InvalidAssociationID.NotFound", func(id string) error {
			_, err := c.DisassociateTrunkInterface(cx, &ec2.DisassociateTrunkInterfaceInput{AssociationId: aws.String(id)})
			return err
		}},
		{"CreateNetworkInterfacePermission", "eni", "InvalidNetworkInterfaceID.Malformed", "InvalidNetworkInterfaceID.NotFound", func(id string) error {
			_, err := c.CreateNetworkInterfacePermission(cx, &ec2.CreateNetworkInterfacePermissionInput{NetworkInterfaceId: aws.String(id), AwsAccountId: aws.String("123456789012"), Permission: types.InterfacePermissionTypeInstanceAttach})
			return err
		}},
		{"CreateSecurityGroup", "vpc", "InvalidVpcID.Malformed", "InvalidVpcID.NotFound", func(id string) error {
			_, err := c.CreateSecurityGroup(cx, &ec2.CreateSecurityGroupInput{GroupName: aws.String("g"), Description: aws.String("g"), VpcId: aws.String(id)})
			return err
		}},
		{"DeleteSecurityGroup", "sg", "InvalidGroupId.Malformed", "InvalidGroup.NotFound", func(id string) error {
			_, err := c.DeleteSecurityGroup(cx, &ec2.DeleteSecurityGroupInput{GroupId: aws.String(id)})
			return err
		}},
		{"AuthorizeSecurityGroupIngress GroupId", "sg", "InvalidGroupId.Malformed", "InvalidGroup.NotFound", func(id string) error {
			_, err := c.AuthorizeSecurityGroupIngress(cx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: perm})
			return err
		}},
		{"AuthorizeSecurityGroupIngress referenced group", "sg", "InvalidGroupId.Malformed", "InvalidGroup.NotFound", func(id string) error {
			_, err := c.AuthorizeSecurityGroupIngress(cx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String(sg), IpPermissions: append(groupPerm(id), perm...)})
			return err
		}},
		{"AuthorizeSecurityGroupEgress GroupId", "sg", "InvalidGroupId.Malformed", "InvalidGroup.NotFound", func(id string) error {
			_, err := c.AuthorizeSecurityGroupEgress(cx, &ec2.AuthorizeSecurityGroupEgressInput{GroupId: aws.String(id), IpPermissions: perm})
			return err
		}},
		{"RevokeSecurityGroupIngress GroupId", "sg", "InvalidGroupId.Malformed", "InvalidGroup.NotFound", func(id string) error {
			_, err := c.RevokeSecurityGroupIngress(cx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(id), IpPermissions: perm})
			return err
		}},
		{"RevokeSecurityGroupEgress GroupId", "sg", "InvalidGroupId.Malformed", "InvalidGroup.NotFound", func(id string) error {
			_, err := c.RevokeSecurityGroupEgress(cx, &ec2.RevokeSecurityGroupEgressInput{GroupId: aws.String(id), IpPermissions: perm})
			return err
		}},
		{"RevokeSecurityGroupIngress SecurityGroupRuleId", "sgr", "InvalidSecurityGroupRuleId.Malformed", "InvalidSecurityGroupRuleId.NotFound", func(id string) error {
			_, err := c.RevokeSecurityGroupIngress(cx, &ec2.RevokeSecurityGroupIngressInput{GroupId: aws.String(sg), SecurityGroupRuleIds: []string{id}})
			return err
		}},
	}
	// CreateTags and DeleteTags answer InvalidID for a malformed id of any
	// kind, and the kind's .NotFound for an unknown one.
	for _, k := range []struct{ prefix, notFound string }{
		{"eni", "InvalidNetworkInterfaceID.NotFound"},
		{"i", "InvalidInstanceID.NotFound"},
		{"subnet", "InvalidSubnetID.NotFound"},
		{"vpc", "InvalidVpcID.NotFound"},
		{"sg", "InvalidGroup.NotFound"},
	} {
		cases = append(cases, struct {
			action, prefix      string
			malformed, notFound string
			call                func(id string) error
		}{"CreateTags " + k.prefix, k.prefix, "InvalidID", k.notFound, func(id string) error {
			_, err := c.CreateTags(cx, &ec2.CreateTagsInput{Resources: []string{eni, id}, Tags: []types.Tag{{Key: aws.String("k"), Value: aws.String("v")}}})
			return err
		}}, struct {
			action, prefix      string
			malformed, notFound string
			call                func(id string) error
		}{"DeleteTags " + k.prefix, k.prefix, "InvalidID", k.notFound, func(id string) error {
			_, err := c.DeleteTags(cx, &ec2.DeleteTagsInput{Resources: []string{eni, id}})
			return err
		}})
	}

	// An empty member of an id list (which the SDK sends as "Name.N=") is
	// malformed too: Invalid id: "".
	inList := map[string]bool{
		"DescribeNetworkInterfaces": true, "DescribeInstances": true, "DescribeSubnets": true, "DescribeVpcs": true,
		"DescribeSecurityGroups": true, "DescribeSecurityGroupRules": true, "DescribeTrunkInterfaceAssociations": true,
		"CreateNetworkInterface SecurityGroupId": true, "ModifyNetworkInterfaceAttribute SecurityGroupId": true,
		"RunInstances SecurityGroupId": true, "TerminateInstances": true, "RevokeSecurityGroupIngress SecurityGroupRuleId": true,
	}
	for _, tc := range cases {
		t.Run(tc.action, func(t *testing.T) {
			bad := malformedIDs(tc.prefix)
			if inList[tc.action] || strings.HasPrefix(tc.action, "CreateTags ") || strings.HasPrefix(tc.action, "DeleteTags ") {
				bad = append(bad, "")
			}
			for _, id := range bad {
				before := env.Sim.State()
				err := tc.call(id)
				wantCode(t, err, tc.malformed)
				var re *awshttp.ResponseError
				if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadRequest {
					t.Errorf("%s: want HTTP 400, got %v", id, err)
				}
				if after := env.Sim.State(); !reflect.DeepEqual(before, after) {
					t.Errorf("%s: the refused call changed the account", id)
				}
			}
			for _, id := range unknownIDs(tc.prefix) {
				wantCode(t, tc.call(id), tc.notFound)
			}
		})
	}
}
