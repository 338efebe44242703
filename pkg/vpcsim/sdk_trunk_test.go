package vpcsim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// newTrunk creates a trunk ENI as the resource controller does and attaches
// it at device index 2.
func newTrunk(t *testing.T, c *ec2.Client) string {
	t.Helper()
	trunk := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), Description: aws.String("aws-k8s-trunk-eni"), InterfaceType: types.NetworkInterfaceCreationTypeTrunk})
	if _, err := attach(c, t, trunk, 2); err != nil {
		t.Fatalf("attach trunk: %v", err)
	}
	return trunk
}

func associate(c *ec2.Client, t *testing.T, branch, trunk string, vlan int32) (*ec2.AssociateTrunkInterfaceOutput, error) {
	return c.AssociateTrunkInterface(ctx(t), &ec2.AssociateTrunkInterfaceInput{BranchInterfaceId: aws.String(branch), TrunkInterfaceId: aws.String(trunk), VlanId: aws.Int32(vlan)})
}

func trunkAssocs(t *testing.T, c *ec2.Client, trunk string) []types.TrunkInterfaceAssociation {
	t.Helper()
	var out []types.TrunkInterfaceAssociation
	in := &ec2.DescribeTrunkInterfaceAssociationsInput{MaxResults: aws.Int32(5),
		Filters: []types.Filter{{Name: aws.String("trunk-interface-association.trunk-interface-id"), Values: []string{trunk}}}}
	pages := ec2.NewDescribeTrunkInterfaceAssociationsPaginator(c, in)
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.InterfaceAssociations...)
	}
	return out
}

// m5.large carries 9 branch interfaces (catalog); the 10th is refused.
func TestTrunkAndBranchLifeCycle(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	trunk := newTrunk(t, c)
	subnet := aws.String(simtest.NodeSubnetID)
	var branches []string
	for vlan := int32(1); vlan <= 9; vlan++ {
		b := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: subnet, Description: aws.String("aws-k8s-branch-eni")})
		out, err := associate(c, t, b, trunk, vlan)
		if err != nil {
			t.Fatalf("branch %d of 9: %v", vlan, err)
		}
		a := out.InterfaceAssociation
		if aws.ToString(a.AssociationId) == "" || aws.ToString(a.BranchInterfaceId) != b || aws.ToString(a.TrunkInterfaceId) != trunk || aws.ToInt32(a.VlanId) != vlan || a.InterfaceProtocol != types.InterfaceProtocolTypeVlan {
			t.Fatalf("association %+v", a)
		}
		branches = append(branches, b)
	}
	tenth := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: subnet})
	_, err := associate(c, t, tenth, trunk, 10)
	wantCode(t, err, "AttachmentLimitExceeded")

	got := trunkAssocs(t, c, trunk)
	if len(got) != 9 {
		t.Fatalf("trunk has %d associations over pages of 5, want 9", len(got))
	}
	d := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{branches[0], trunk}}))
	for _, e := range d.NetworkInterfaces {
		want := types.NetworkInterfaceTypeBranch
		if aws.ToString(e.NetworkInterfaceId) == trunk {
			want = types.NetworkInterfaceTypeTrunk
		}
		if e.InterfaceType != want {
			t.Errorf("%s: InterfaceType %q, want %q", aws.ToString(e.NetworkInterfaceId), e.InterfaceType, want)
		}
	}

	// a disassociated VLAN can be used again; a deleted branch leaves its trunk
	first := aws.ToString(got[0].AssociationId)
	must[*ec2.DisassociateTrunkInterfaceOutput](t)(c.DisassociateTrunkInterface(ctx(t), &ec2.DisassociateTrunkInterfaceInput{AssociationId: aws.String(first)}))
	_, err = c.DisassociateTrunkInterface(ctx(t), &ec2.DisassociateTrunkInterfaceInput{AssociationId: aws.String(first)})
	wantCode(t, err, "InvalidAssociationID.NotFound")
	if _, err := associate(c, t, tenth, trunk, aws.ToInt32(got[0].VlanId)); err != nil {
		t.Fatalf("reuse a freed VLAN: %v", err)
	}
	must[*ec2.DeleteNetworkInterfaceOutput](t)(c.DeleteNetworkInterface(ctx(t), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(branches[1])}))
	if n := len(trunkAssocs(t, c, trunk)); n != 8 {
		t.Fatalf("after a disassociation, a reuse and a branch delete: %d associations, want 8", n)
	}

	// detaching and deleting the trunk ends every association
	inst := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{trunk}}))
	must[*ec2.DetachNetworkInterfaceOutput](t)(c.DetachNetworkInterface(ctx(t), &ec2.DetachNetworkInterfaceInput{AttachmentId: inst.NetworkInterfaces[0].Attachment.AttachmentId}))
	must[*ec2.DeleteNetworkInterfaceOutput](t)(c.DeleteNetworkInterface(ctx(t), &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(trunk)}))
	all := must[*ec2.DescribeTrunkInterfaceAssociationsOutput](t)(c.DescribeTrunkInterfaceAssociations(ctx(t), &ec2.DescribeTrunkInterfaceAssociationsInput{}))
	if len(all.InterfaceAssociations) != 0 {
		t.Fatalf("%d associations outlive their deleted trunk", len(all.InterfaceAssociations))
	}
	left := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(ctx(t), &ec2.DescribeNetworkInterfacesInput{NetworkInterfaceIds: []string{branches[2]}}))
	if it := left.NetworkInterfaces[0].InterfaceType; it != types.NetworkInterfaceTypeInterface || left.NetworkInterfaces[0].Status != types.NetworkInterfaceStatusAvailable {
		t.Fatalf("a branch of a deleted trunk: type %q status %q, want an available interface", it, left.NetworkInterfaces[0].Status)
	}
}

func TestTrunkMisuseErrorCodes(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	trunk := newTrunk(t, c)
	subnet := aws.String(simtest.NodeSubnetID)
	b1 := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: subnet})
	b2 := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: subnet, InterfaceType: types.NetworkInterfaceCreationTypeBranch})
	must[*ec2.AssociateTrunkInterfaceOutput](t)(associate(c, t, b1, trunk, 7))
	primary := must[*ec2.DescribeInstancesOutput](t)(c.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{InstanceIds: []string{simtest.InstanceID}})).Reservations[0].Instances[0].NetworkInterfaces[0]
	unattachedTrunk := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: subnet, InterfaceType: types.NetworkInterfaceCreationTypeTrunk})
	otherAZ := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetBID)})

	for _, tc := range []struct {
		name, branch, trunk string
		vlan                int32
		code                string
	}{
		{"VLAN id in use", b2, trunk, 7, "InvalidParameterValue"},
		{"VLAN id 0", b2, trunk, 0, "InvalidParameterValue"},
		{"VLAN id 4095", b2, trunk, 4095, "InvalidParameterValue"},
		{"branch on a non-trunk", b2, aws.ToString(primary.NetworkInterfaceId), 8, "InvalidParameterValue"},
		{"branch already associated", b1, trunk, 8, "InvalidNetworkInterface.InUse"},
		{"attached ENI as a branch", aws.ToString(primary.NetworkInterfaceId), trunk, 8, "InvalidNetworkInterface.InUse"},
		{"trunk as a branch", trunk, trunk, 8, "InvalidParameterValue"},
		{"trunk not attached", b2, unattachedTrunk, 8, "IncorrectState"},
		{"other availability zone", otherAZ, trunk, 8, "InvalidParameterValue"},
		{"unknown branch", "eni-0123456789abcdef0", trunk, 8, "InvalidNetworkInterfaceID.NotFound"},
		{"unknown trunk", b2, "eni-0123456789abcdef0", 8, "InvalidNetworkInterfaceID.NotFound"},
		{"malformed trunk id", b2, "nope", 8, "InvalidNetworkInterfaceID.Malformed"},
	} {
		_, err := associate(c, t, tc.branch, tc.trunk, tc.vlan)
		if err == nil {
			t.Errorf("%s: associated", tc.name)
			continue
		}
		wantCode(t, err, tc.code)
	}
	_, err := attach(c, t, b2, 1)
	wantCode(t, err, "InvalidParameterValue") // a branch-type ENI is never attached
	_, err = c.DisassociateTrunkInterface(ctx(t), &ec2.DisassociateTrunkInterfaceInput{AssociationId: aws.String("trunk-assoc-0123456789abcdef0")})
	wantCode(t, err, "InvalidAssociationID.NotFound")
	_, err = c.DescribeTrunkInterfaceAssociations(ctx(t), &ec2.DescribeTrunkInterfaceAssociationsInput{AssociationIds: []string{"trunk-assoc-0123456789abcdef0"}})
	wantCode(t, err, "InvalidAssociationID.NotFound")

	// a retried call with the same ClientToken answers the same association
	in := &ec2.AssociateTrunkInterfaceInput{BranchInterfaceId: aws.String(b2), TrunkInterfaceId: aws.String(trunk), VlanId: aws.Int32(8), ClientToken: aws.String("tok-1")}
	a1 := must[*ec2.AssociateTrunkInterfaceOutput](t)(c.AssociateTrunkInterface(ctx(t), in))
	a2 := must[*ec2.AssociateTrunkInterfaceOutput](t)(c.AssociateTrunkInterface(ctx(t), in))
	if aws.ToString(a1.InterfaceAssociation.AssociationId) != aws.ToString(a2.InterfaceAssociation.AssociationId) {
		t.Fatalf("retry with the same token made a second association")
	}
	in.VlanId = aws.Int32(9)
	_, err = c.AssociateTrunkInterface(ctx(t), in)
	wantCode(t, err, "IdempotentParameterMismatch")
}

// Trunking only on types that support it: t3.medium has none.
func TestTrunkRefusedOnTypeWithoutTrunking(t *testing.T) {
	sc := simtest.Basic()
	sc.Instances[0].Type = "t3.medium"
	env := simtest.Start(t, sc)
	c := newEC2(env.EC2URL)
	trunk := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID), InterfaceType: types.NetworkInterfaceCreationTypeTrunk})
	_, err := attach(c, t, trunk, 1)
	wantCode(t, err, "InvalidParameterValue")
}
