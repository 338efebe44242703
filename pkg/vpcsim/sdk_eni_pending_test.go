package vpcsim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// CreateNetworkInterface answers the new interface with status pending,
// as EC2's API reference shows it (docs/compatibility.md, vpcsim); the
// interface is available right after, so a describe says available and an
// attach made at once succeeds. Before, the create answer said available,
// so a client taking the answer's status for the interface's state was
// never caught.
func TestCreateNetworkInterfaceAnswersPending(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	cx := ctx(t)
	out := must[*ec2.CreateNetworkInterfaceOutput](t)(c.CreateNetworkInterface(cx, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)}))
	if s := out.NetworkInterface.Status; s != "pending" {
		t.Errorf("create answered status %q, want pending", s)
	}
	id := out.NetworkInterface.NetworkInterfaceId
	d := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*id}}))
	if s := d.NetworkInterfaces[0].Status; s != types.NetworkInterfaceStatusAvailable {
		t.Errorf("described right after create: %q, want available", s)
	}
	must[*ec2.AttachNetworkInterfaceOutput](t)(attach(c, t, *id, 1))
	d = must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{*id}}))
	if a := d.NetworkInterfaces[0].Attachment; a == nil || a.Status != types.AttachmentStatusAttached {
		t.Errorf("attached right after create: %+v, want attached", a)
	}
}
