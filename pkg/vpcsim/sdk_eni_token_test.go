package vpcsim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// A ClientToken stands for one whole CreateNetworkInterface request: a retry
// answers the first ENI, and the token reused with any other parameter is
// refused rather than answered with an ENI that is not what was asked for.
func TestCreateENIClientTokenComparesWholeRequest(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	const token = "tok-create-eni"
	base := func() *ec2.CreateNetworkInterfaceInput {
		return &ec2.CreateNetworkInterfaceInput{
			SubnetId:                       aws.String(simtest.NodeSubnetID),
			Description:                    aws.String("aws-K8S-i-00000000000000001"),
			Groups:                         []string{simtest.SecurityGroupID},
			SecondaryPrivateIpAddressCount: aws.Int32(2),
			TagSpecifications: []types.TagSpecification{{
				ResourceType: types.ResourceTypeNetworkInterface,
				Tags:         []types.Tag{{Key: aws.String("node.k8s.amazonaws.com/instance_id"), Value: aws.String(simtest.InstanceID)}},
			}},
			ClientToken: aws.String(token),
		}
	}
	first := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx(t), base()))
	id := aws.ToString(first.NetworkInterface.NetworkInterfaceId)
	if got := aws.ToString(first.ClientToken); got != token {
		t.Errorf("first reply clientToken = %q, want %q", got, token)
	}
	again := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx(t), base()))
	if got := aws.ToString(again.NetworkInterface.NetworkInterfaceId); got != id {
		t.Fatalf("same token and request answered %s, want the first ENI %s", got, id)
	}
	if got := aws.ToString(again.ClientToken); got != token {
		t.Errorf("retry reply clientToken = %q, want %q", got, token)
	}

	variants := map[string]func(in *ec2.CreateNetworkInterfaceInput){
		"subnet":      func(in *ec2.CreateNetworkInterfaceInput) { in.SubnetId = aws.String(simtest.NodeSubnetBID) },
		"description": func(in *ec2.CreateNetworkInterfaceInput) { in.Description = aws.String("something else") },
		"groups": func(in *ec2.CreateNetworkInterfaceInput) {
			in.Groups = []string{simtest.SecurityGroupID, simtest.SecurityGroup2ID}
		},
		"secondary count": func(in *ec2.CreateNetworkInterfaceInput) { in.SecondaryPrivateIpAddressCount = aws.Int32(3) },
		"primary address": func(in *ec2.CreateNetworkInterfaceInput) { in.PrivateIpAddress = aws.String("10.0.9.200") },
		"private addresses": func(in *ec2.CreateNetworkInterfaceInput) {
			in.SecondaryPrivateIpAddressCount = nil
			in.PrivateIpAddresses = []types.PrivateIpAddressSpecification{{PrivateIpAddress: aws.String("10.0.9.201")}, {PrivateIpAddress: aws.String("10.0.9.202")}}
		},
		"prefixes": func(in *ec2.CreateNetworkInterfaceInput) {
			in.SecondaryPrivateIpAddressCount = nil
			in.Ipv4PrefixCount = aws.Int32(1)
		},
		"interface type": func(in *ec2.CreateNetworkInterfaceInput) { in.InterfaceType = types.NetworkInterfaceCreationTypeTrunk },
		"ipv6 count":     func(in *ec2.CreateNetworkInterfaceInput) { in.Ipv6AddressCount = aws.Int32(1) },
		"tags": func(in *ec2.CreateNetworkInterfaceInput) {
			in.TagSpecifications[0].Tags = append(in.TagSpecifications[0].Tags, types.Tag{Key: aws.String("extra"), Value: aws.String("1")})
		},
		"tag value": func(in *ec2.CreateNetworkInterfaceInput) {
			in.TagSpecifications[0].Tags[0].Value = aws.String("i-00000000000000009")
		},
		// a parameter vpcsim does not model still belongs to the request
		"enable primary ipv6": func(in *ec2.CreateNetworkInterfaceInput) { in.EnablePrimaryIpv6 = aws.Bool(true) },
	}
	for name, change := range variants {
		t.Run(name, func(t *testing.T) {
			in := base()
			change(in)
			_, err := c.CreateNetworkInterface(ctx(t), in)
			wantCode(t, err, "IdempotentParameterMismatch")
		})
	}

	// none of the refused calls made an ENI: the instance's primary and ours
	if n := len(env.Sim.NetworkInterfaces()); n != 2 {
		t.Fatalf("want 2 ENIs (primary and the token's), have %d", n)
	}
	// the answer is still the first ENI after the refusals
	last := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(ctx(t), base()))
	if got := aws.ToString(last.NetworkInterface.NetworkInterfaceId); got != id {
		t.Fatalf("same token and request answered %s after the refusals, want %s", got, id)
	}
}
