package vpcsim_test

import (
	"net/netip"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// eniLifecycle runs create → attach → delete-on-termination → grow → shrink
// → detach → delete in one address mode against any EC2 endpoint.
func eniLifecycle(t *testing.T, c *ec2.Client, mode string) {
	cx := ctx(t)
	in := &ec2.CreateNetworkInterfaceInput{
		SubnetId:    aws.String(simtest.NodeSubnetID),
		Description: aws.String("aws-K8S-" + simtest.InstanceID),
		Groups:      []string{simtest.SecurityGroupID},
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeNetworkInterface,
			Tags: []types.Tag{
				{Key: aws.String("node.k8s.amazonaws.com/instance_id"), Value: aws.String(simtest.InstanceID)},
				{Key: aws.String("cluster.k8s.amazonaws.com/name"), Value: aws.String("demo")},
			},
		}},
	}
	switch mode {
	case "secondary":
		in.SecondaryPrivateIpAddressCount = aws.Int32(9)
	case "prefix":
		in.Ipv4PrefixCount = aws.Int32(1)
	case "ipv6":
		in.Ipv6PrefixCount = aws.Int32(1)
	}
	created, err := c.CreateNetworkInterface(cx, in)
	if err != nil {
		t.Fatal(err)
	}
	eni := created.NetworkInterface
	id := aws.ToString(eni.NetworkInterfaceId)
	if aws.ToString(eni.Description) != "aws-K8S-"+simtest.InstanceID || len(eni.TagSet) != 2 || eni.Status != types.NetworkInterfaceStatusAvailable {
		t.Fatalf("created ENI: %+v", eni)
	}
	switch mode {
	case "secondary":
		if len(eni.PrivateIpAddresses) != 10 || !aws.ToBool(eni.PrivateIpAddresses[0].Primary) {
			t.Fatalf("want primary + 9 secondary addresses, got %d", len(eni.PrivateIpAddresses))
		}
	case "prefix":
		if len(eni.Ipv4Prefixes) != 1 || netip.MustParsePrefix(aws.ToString(eni.Ipv4Prefixes[0].Ipv4Prefix)).Bits() != 28 {
			t.Fatalf("want one /28, got %+v", eni.Ipv4Prefixes)
		}
	case "ipv6":
		if len(eni.Ipv6Prefixes) != 1 || netip.MustParsePrefix(aws.ToString(eni.Ipv6Prefixes[0].Ipv6Prefix)).Bits() != 80 {
			t.Fatalf("want one /80, got %+v", eni.Ipv6Prefixes)
		}
	}

	att, err := c.AttachNetworkInterface(cx, &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(id), InstanceId: aws.String(simtest.InstanceID),
		DeviceIndex: aws.Int32(1), NetworkCardIndex: aws.Int32(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModifyNetworkInterfaceAttribute(cx, &ec2.ModifyNetworkInterfaceAttributeInput{
		NetworkInterfaceId: aws.String(id),
		Attachment:         &types.NetworkInterfaceAttachmentChanges{AttachmentId: att.AttachmentId, DeleteOnTermination: aws.Bool(true)},
	}); err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	got := d.NetworkInterfaces[0]
	if got.Attachment == nil || aws.ToString(got.Attachment.InstanceId) != simtest.InstanceID ||
		aws.ToInt32(got.Attachment.DeviceIndex) != 1 || !aws.ToBool(got.Attachment.DeleteOnTermination) ||
		got.Attachment.Status != types.AttachmentStatusAttached || got.Status != types.NetworkInterfaceStatusInUse {
		t.Fatalf("after attach: %+v %+v", got, got.Attachment)
	}

	switch mode {
	case "secondary":
		// m5.large: 10 IPv4 per ENI including the primary → full already
		_, err := c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), SecondaryPrivateIpAddressCount: aws.Int32(1)})
		wantCode(t, err, "PrivateIpAddressLimitExceeded")
		drop := []string{aws.ToString(got.PrivateIpAddresses[1].PrivateIpAddress), aws.ToString(got.PrivateIpAddresses[2].PrivateIpAddress)}
		must[*ec2.UnassignPrivateIpAddressesOutput](t)(c.UnassignPrivateIpAddresses(cx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), PrivateIpAddresses: drop}))
		out := must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), SecondaryPrivateIpAddressCount: aws.Int32(2)}))
		if len(out.AssignedPrivateIpAddresses) != 2 || aws.ToString(out.NetworkInterfaceId) != id {
			t.Fatalf("assign: %+v", out)
		}
	case "prefix":
		out := must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), Ipv4PrefixCount: aws.Int32(8)}))
		if len(out.AssignedIpv4Prefixes) != 8 {
			t.Fatalf("assign prefixes: %+v", out)
		}
		// primary + 9 prefixes = 10 slots: full
		_, err := c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), Ipv4PrefixCount: aws.Int32(1)})
		wantCode(t, err, "PrivateIpAddressLimitExceeded")
		must[*ec2.UnassignPrivateIpAddressesOutput](t)(c.UnassignPrivateIpAddresses(cx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), Ipv4Prefixes: []string{aws.ToString(out.AssignedIpv4Prefixes[0].Ipv4Prefix)}}))
	case "ipv6":
		out := must[*ec2.AssignIpv6AddressesOutput](t)(c.AssignIpv6Addresses(cx, &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(id), Ipv6AddressCount: aws.Int32(2)}))
		if len(out.AssignedIpv6Addresses) != 2 {
			t.Fatalf("assign ipv6: %+v", out)
		}
		un := must[*ec2.UnassignIpv6AddressesOutput](t)(c.UnassignIpv6Addresses(cx, &ec2.UnassignIpv6AddressesInput{NetworkInterfaceId: aws.String(id), Ipv6Addresses: out.AssignedIpv6Addresses[:1]}))
		if len(un.UnassignedIpv6Addresses) != 1 {
			t.Fatalf("unassign ipv6: %+v", un)
		}
	}

	_, err = c.DeleteNetworkInterface(cx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)})
	wantCode(t, err, "InvalidNetworkInterface.InUse")
	must[*ec2.DetachNetworkInterfaceOutput](t)(c.DetachNetworkInterface(cx, &ec2.DetachNetworkInterfaceInput{AttachmentId: att.AttachmentId}))
	must[*ec2.DeleteNetworkInterfaceOutput](t)(c.DeleteNetworkInterface(cx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)}))
	_, err = c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
}

func TestENILifecycleSDK(t *testing.T) {
	for _, mode := range []string{"secondary", "prefix", "ipv6"} {
		t.Run(mode, func(t *testing.T) {
			env := simtest.Start(t, simtest.Basic())
			eniLifecycle(t, newEC2(env.EC2URL), mode)
			// only the primary ENI is left and every address went back
			if n := len(env.Sim.NetworkInterfaces()); n != 1 {
				t.Fatalf("want 1 ENI left, have %d", n)
			}
		})
	}
}
