package vpcsim_test

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

func createENI(t *testing.T, c *ec2.Client, in *ec2.CreateNetworkInterfaceInput) string {
	t.Helper()
	out, err := c.CreateNetworkInterface(ctx(t), in)
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.NetworkInterface.NetworkInterfaceId)
}

func attach(c *ec2.Client, t *testing.T, eni string, dev int32) (*ec2.AttachNetworkInterfaceOutput, error) {
	return c.AttachNetworkInterface(ctx(t), &ec2.AttachNetworkInterfaceInput{
		NetworkInterfaceId: aws.String(eni), InstanceId: aws.String(simtest.InstanceID), DeviceIndex: aws.Int32(dev)})
}

// m5.large: 3 ENIs, 10 IPv4 addresses per ENI (primary included).
func TestLimitsExactlyAtInstanceType(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	subnet := aws.String(simtest.NodeSubnetID)
	for dev := int32(1); dev <= 2; dev++ {
		id := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: subnet})
		if _, err := attach(c, t, id, dev); err != nil {
			t.Fatalf("ENI %d of 3: %v", dev+1, err)
		}
		// fill it to exactly 10 addresses one call at a time
		for i := 0; i < 9; i++ {
			if _, err := c.AssignPrivateIpAddresses(ctx(t), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), SecondaryPrivateIpAddressCount: aws.Int32(1)}); err != nil {
				t.Fatalf("address %d of 10: %v", i+2, err)
			}
		}
		_, err := c.AssignPrivateIpAddresses(ctx(t), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), SecondaryPrivateIpAddressCount: aws.Int32(1)})
		wantCode(t, err, "PrivateIpAddressLimitExceeded")
	}
	fourth := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: subnet})
	_, err := attach(c, t, fourth, 3)
	wantCode(t, err, "AttachmentLimitExceeded")

	// an ENI that holds more addresses than the type allows cannot attach
	sc := simtest.Basic()
	sc.Instances[0].Type = "t3.medium" // 6 IPv4 per ENI
	env2 := simtest.Start(t, sc)
	c2 := newEC2(env2.EC2URL)
	big := createENI(t, c2, &ec2.CreateNetworkInterfaceInput{SubnetId: subnet, SecondaryPrivateIpAddressCount: aws.Int32(6)})
	_, err = attach(c2, t, big, 1)
	wantCode(t, err, "PrivateIpAddressLimitExceeded")
}

func TestErrorCodesFromRealSituations(t *testing.T) {
	sc := simtest.Basic()
	sc.VPCs[0].Subnets = append(sc.VPCs[0].Subnets,
		vpcsim.SubnetSpec{ID: "subnet-0000000000000005a", AZ: "us-west-2a", CIDR: "10.0.48.0/27"},  // 27 usable
		vpcsim.SubnetSpec{ID: "subnet-00000000000000f5a", AZ: "us-west-2a", CIDR: "10.0.48.64/26"}, // blocks .64 .80 .96 .112
	)
	sc.DenyActions = []string{"DescribeTags"}
	env := simtest.Start(t, sc)
	c := newEC2(env.EC2URL)
	cx := ctx(t)

	t.Run("InsufficientFreeAddressesInSubnet", func(t *testing.T) {
		id := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String("subnet-0000000000000005a"), SecondaryPrivateIpAddressCount: aws.Int32(20)})
		// 27 usable - 21 = 6 left
		_, err := c.CreateNetworkInterface(cx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String("subnet-0000000000000005a"), SecondaryPrivateIpAddressCount: aws.Int32(6)})
		wantCode(t, err, "InsufficientFreeAddressesInSubnet")
		_, err = c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), SecondaryPrivateIpAddressCount: aws.Int32(7)})
		wantCode(t, err, "InsufficientFreeAddressesInSubnet")
		subnets, err := c.DescribeSubnets(cx, &ec2.DescribeSubnetsInput{SubnetIds: []string{"subnet-0000000000000005a"}})
		if err != nil || aws.ToInt32(subnets.Subnets[0].AvailableIpAddressCount) != 6 {
			t.Fatalf("AvailableIpAddressCount after failures: %v %v", subnets, err)
		}
	})
	t.Run("InsufficientCidrBlocks", func(t *testing.T) {
		// primary + 12 secondaries take .68-.80: block .80 is dirty, .64 holds
		// reserved addresses, .112 the broadcast → only .96 is free
		id := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String("subnet-00000000000000f5a"), SecondaryPrivateIpAddressCount: aws.Int32(12)})
		out, err := c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), Ipv4PrefixCount: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		if got := aws.ToString(out.AssignedIpv4Prefixes[0].Ipv4Prefix); got != "10.0.48.96/28" {
			t.Fatalf("prefix %s, want the only aligned free block 10.0.48.96/28", got)
		}
		_, err = c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), Ipv4PrefixCount: aws.Int32(1)})
		wantCode(t, err, "InsufficientCidrBlocks")
		// single addresses are still available
		if _, err := c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(id), SecondaryPrivateIpAddressCount: aws.Int32(1)}); err != nil {
			t.Fatalf("single address despite no /28: %v", err)
		}
	})
	t.Run("InvalidNetworkInterfaceID.NotFound", func(t *testing.T) {
		_, err := c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"eni-0123456789abcdef0"}})
		wantCode(t, err, "InvalidNetworkInterfaceID.NotFound")
		if !strings.Contains(err.Error(), "'eni-0123456789abcdef0'") {
			t.Fatalf("message must name the id in quotes: %v", err)
		}
	})
	t.Run("InvalidAttachmentID.NotFound", func(t *testing.T) {
		_, err := c.DetachNetworkInterface(cx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String("eni-attach-0123456789abcdef0")})
		wantCode(t, err, "InvalidAttachmentID.NotFound")
	})
	t.Run("InvalidParameterValue", func(t *testing.T) {
		id := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})
		_, err := attach(c, t, id, 0) // the primary ENI is at 0
		wantCode(t, err, "InvalidParameterValue")
		// an ENI in another AZ cannot attach
		other := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetBID)})
		_, err = attach(c, t, other, 1)
		wantCode(t, err, "InvalidParameterValue")
	})
	t.Run("InvalidParameterCombination", func(t *testing.T) {
		_, err := c.CreateNetworkInterface(cx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), SecondaryPrivateIpAddressCount: aws.Int32(1), Ipv4PrefixCount: aws.Int32(1)})
		wantCode(t, err, "InvalidParameterCombination")
		_, err = c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{"eni-00000000000000001"}, MaxResults: aws.Int32(5)})
		wantCode(t, err, "InvalidParameterCombination")
	})
	t.Run("MissingParameter", func(t *testing.T) {
		inst, _ := env.Sim.Instance(simtest.InstanceID)
		_, err := c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(inst.PrimaryENI)})
		wantCode(t, err, "MissingParameter")
	})
	t.Run("InvalidNetworkInterface.InUse", func(t *testing.T) {
		inst, _ := env.Sim.Instance(simtest.InstanceID)
		_, err := c.DeleteNetworkInterface(cx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(inst.PrimaryENI)})
		wantCode(t, err, "InvalidNetworkInterface.InUse")
	})
	t.Run("UnauthorizedOperation", func(t *testing.T) {
		_, err := c.DescribeTags(cx, &ec2.DescribeTagsInput{})
		wantCode(t, err, "UnauthorizedOperation")
	})
	t.Run("InternalError injected", func(t *testing.T) {
		if err := env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "DescribeVpcs", Code: "InternalError", Count: 1}}}); err != nil {
			t.Fatal(err)
		}
		_, err := c.DescribeVpcs(cx, &ec2.DescribeVpcsInput{})
		wantCode(t, err, "InternalError")
		var re *awshttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() != 500 {
			t.Fatalf("want HTTP 500, got %v", err)
		}
		if _, err := c.DescribeVpcs(cx, &ec2.DescribeVpcsInput{}); err != nil {
			t.Fatalf("count 1 must inject once: %v", err)
		}
		st := env.Sim.Stats()
		if st.Errors["DescribeVpcs"]["InternalError"] != 1 || st.Calls["DescribeVpcs"] != 2 {
			t.Fatalf("stats: %+v", st)
		}
	})
	t.Run("InvalidAction", func(t *testing.T) {
		resp, err := http.PostForm(env.EC2URL, url.Values{"Action": {"LaunchRockets"}, "Version": {"2016-11-15"}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), "<Code>InvalidAction</Code>") || !strings.Contains(string(b), "<RequestID>") {
			t.Fatalf("InvalidAction: %d %s", resp.StatusCode, b)
		}
	})
	t.Run("OperationNotPermitted primary detach", func(t *testing.T) {
		inst, _ := env.Sim.Instance(simtest.InstanceID)
		_, err := c.DetachNetworkInterface(cx, &ec2.DetachNetworkInterfaceInput{AttachmentId: aws.String(inst.ENIs[0].Attachment.ID)})
		wantCode(t, err, "OperationNotPermitted")
	})
	t.Run("InvalidInstanceType", func(t *testing.T) {
		_, err := c.DescribeInstanceTypes(cx, &ec2.DescribeInstanceTypesInput{InstanceTypes: []types.InstanceType{"m5.large", "x9.huge"}})
		wantCode(t, err, "InvalidInstanceType")
	})
}
