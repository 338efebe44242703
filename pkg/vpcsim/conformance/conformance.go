// Package conformance holds SDK-level checks shared by the in-process tests
// of pkg/vpcsim and the tests of the cmd/vpcsim binary.
package conformance

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// NewEC2 is the unmodified SDK client pointed at a vpcsim endpoint, with
// retries off so every error surfaces. Request bodies reach net/http in
// memory, as our agent sends them, so no large answer can race the SDK's
// transport whatever the machine's load (docs/compatibility.md, "vpcsim:
// fidelity to EC2"); the vpcsim tests of large answers build their own
// fully default client.
func NewEC2(url string) *ec2.Client {
	return ec2.New(ec2.Options{
		Region:       "us-west-2",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   awsutils.InMemoryBodies(awshttp.NewBuildableClient()),
	})
}

// NewIMDS is the unmodified SDK IMDS client for a vpcsim IMDS endpoint.
func NewIMDS(url string) *imds.Client {
	return imds.New(imds.Options{Endpoint: url, ClientEnableState: imds.ClientEnabled})
}

// Ctx is a test context with a deadline.
func Ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// WantCode asserts that err is an EC2 API error with the given code.
func WantCode(t testing.TB, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want EC2 error %s, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("want EC2 error %s, got %s: %s", code, ae.ErrorCode(), ae.ErrorMessage())
	}
}

// Must fails the test on error and returns the value.
func Must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// World names the resources a check uses: an m5.large instance, a subnet in
// its AZ with IPv6, and a security group of its VPC.
type World struct {
	InstanceID      string
	SubnetID        string
	SecurityGroupID string
}

// ENILifecycle runs create → attach → delete-on-termination → grow → shrink
// → detach → delete in one address mode against any EC2 endpoint.
func ENILifecycle(t testing.TB, c *ec2.Client, w World, mode string) {
	cx := Ctx(t)
	in := &ec2.CreateNetworkInterfaceInput{
		SubnetId:    aws.String(w.SubnetID),
		Description: aws.String("aws-K8S-" + w.InstanceID),
		Groups:      []string{w.SecurityGroupID},
		TagSpecifications: []types.TagSpecification{{
			ResourceType: types.ResourceTypeNetworkInterface,
			Tags: []types.Tag{
				{Key: aws.String("node.k8s.amazonaws.com/instance_id"), Value: aws.String(w.InstanceID)},
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
	// EC2 answers a new interface as pending; it is available by the
	// time it is attached
	fresh := eni.Status == "pending" || eni.Status == types.NetworkInterfaceStatusAvailable
	if aws.ToString(eni.Description) != "aws-K8S-"+w.InstanceID || len(eni.TagSet) != 2 || !fresh {
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
		NetworkInterfaceId: aws.String(id), InstanceId: aws.String(w.InstanceID),
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
	if got.Attachment == nil || aws.ToString(got.Attachment.InstanceId) != w.InstanceID ||
		aws.ToInt32(got.Attachment.DeviceIndex) != 1 || !aws.ToBool(got.Attachment.DeleteOnTermination) ||
		got.Attachment.Status != types.AttachmentStatusAttached || got.Status != types.NetworkInterfaceStatusInUse {
		t.Fatalf("after attach: %+v %+v", got, got.Attachment)
	}

	switch mode {
	case "secondary":
		// m5.large: 10 IPv4 per ENI including the primary → full already
		_, err := c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), SecondaryPrivateIpAddressCount: aws.Int32(1)})
		WantCode(t, err, "PrivateIpAddressLimitExceeded")
		drop := []string{aws.ToString(got.PrivateIpAddresses[1].PrivateIpAddress), aws.ToString(got.PrivateIpAddresses[2].PrivateIpAddress)}
		Must[*ec2.UnassignPrivateIpAddressesOutput](t)(c.UnassignPrivateIpAddresses(cx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), PrivateIpAddresses: drop}))
		out := Must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), SecondaryPrivateIpAddressCount: aws.Int32(2)}))
		if len(out.AssignedPrivateIpAddresses) != 2 || aws.ToString(out.NetworkInterfaceId) != id {
			t.Fatalf("assign: %+v", out)
		}
	case "prefix":
		out := Must[*ec2.AssignPrivateIpAddressesOutput](t)(c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), Ipv4PrefixCount: aws.Int32(8)}))
		if len(out.AssignedIpv4Prefixes) != 8 {
			t.Fatalf("assign prefixes: %+v", out)
		}
		// primary + 9 prefixes = 10 slots: full
		_, err := c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), Ipv4PrefixCount: aws.Int32(1)})
		WantCode(t, err, "PrivateIpAddressLimitExceeded")
		Must[*ec2.UnassignPrivateIpAddressesOutput](t)(c.UnassignPrivateIpAddresses(cx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), Ipv4Prefixes: []string{aws.ToString(out.AssignedIpv4Prefixes[0].Ipv4Prefix)}}))
	case "ipv6":
		out := Must[*ec2.AssignIpv6AddressesOutput](t)(c.AssignIpv6Addresses(cx, &ec2.AssignIpv6AddressesInput{NetworkInterfaceId: aws.String(id), Ipv6AddressCount: aws.Int32(2)}))
		if len(out.AssignedIpv6Addresses) != 2 {
			t.Fatalf("assign ipv6: %+v", out)
		}
		un := Must[*ec2.UnassignIpv6AddressesOutput](t)(c.UnassignIpv6Addresses(cx, &ec2.UnassignIpv6AddressesInput{NetworkInterfaceId: aws.String(id), Ipv6Addresses: out.AssignedIpv6Addresses[:1]}))
		if len(un.UnassignedIpv6Addresses) != 1 {
			t.Fatalf("unassign ipv6: %+v", un)
		}
	}

	_, err = c.DeleteNetworkInterface(cx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)})
	WantCode(t, err, "InvalidNetworkInterface.InUse")
	Must[*ec2.DetachNetworkInterfaceOutput](t)(c.DetachNetworkInterface(cx, &ec2.DetachNetworkInterfaceInput{AttachmentId: att.AttachmentId}))
	Must[*ec2.DeleteNetworkInterfaceOutput](t)(c.DeleteNetworkInterface(cx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)}))
	_, err = c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{id}})
	WantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
}
