package vpcsim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// An associated branch ENI has no attachment, yet EC2 reports it in-use:
// the leaked-ENI sweeps (ipamd's and the resource controller's) filter on
// status=available and must pass a live pod's branch by.
func TestAssociatedBranchIsInUse(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	trunk := newTrunk(t, c)
	branch := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), Description: aws.String("aws-k8s-branch-eni")})
	out, err := associate(c, t, branch, trunk, 7)
	if err != nil {
		t.Fatal(err)
	}

	status := func() types.NetworkInterfaceStatus {
		t.Helper()
		d := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{branch}}))
		return d.NetworkInterfaces[0].Status
	}
	availableBranch := func() bool {
		t.Helper()
		d := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{
			{Name: aws.String("status"), Values: []string{"available"}},
			{Name: aws.String("network-interface-id"), Values: []string{branch}},
		}}))
		return len(d.NetworkInterfaces) == 1
	}
	if s := status(); s != types.NetworkInterfaceStatusInUse {
		t.Fatalf("associated branch: status %q, want in-use", s)
	}
	if availableBranch() {
		t.Fatal("the status=available filter returns an associated branch")
	}

	must[*ec2.DisassociateTrunkInterfaceOutput](t)(c.DisassociateTrunkInterface(ctx(t), &ec2.DisassociateTrunkInterfaceInput{AssociationId: out.InterfaceAssociation.AssociationId}))
	if s := status(); s != types.NetworkInterfaceStatusAvailable {
		t.Fatalf("disassociated branch: status %q, want available", s)
	}
	if !availableBranch() {
		t.Fatal("the status=available filter misses a disassociated branch")
	}
}
