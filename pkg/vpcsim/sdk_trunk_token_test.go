package vpcsim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestDisassociateTrunkRetryIsIdempotent: the SDK sends one client token
// with every attempt of a DisassociateTrunkInterface; when EC2 removed the
// association but the answer was lost, the retry answers success instead of
// InvalidAssociationID.NotFound, and the token with another association is
// refused.
func TestDisassociateTrunkRetryIsIdempotent(t *testing.T) {
	sc := simtest.Basic()
	sc.Faults.Errors = []vpcsim.ErrorRule{{Action: "DisassociateTrunkInterface", Code: "InternalError", Count: 1, After: true}}
	env := simtest.Start(t, sc)
	c := newEC2(env.EC2URL)
	trunk := newTrunk(t, c)
	var assocs []string
	for vlan := int32(1); vlan <= 2; vlan++ {
		b := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})
		out := must[*ec2.AssociateTrunkInterfaceOutput](t)(associate(c, t, b, trunk, vlan))
		assocs = append(assocs, aws.ToString(out.InterfaceAssociation.AssociationId))
	}
	const token = "tok-disassociate"
	out, err := c.DisassociateTrunkInterface(ctx(t), &ec2.DisassociateTrunkInterfaceInput{AssociationId: aws.String(assocs[0]), ClientToken: aws.String(token)}, retryAtOnce)
	if err != nil {
		t.Fatalf("DisassociateTrunkInterface, answer lost once and retried: %v", err)
	}
	if !aws.ToBool(out.Return) || aws.ToString(out.ClientToken) != token {
		t.Fatalf("retry answered return=%v clientToken=%q, want true and %q", aws.ToBool(out.Return), aws.ToString(out.ClientToken), token)
	}
	if got := trunkAssocs(t, c, trunk); len(got) != 1 || aws.ToString(got[0].AssociationId) != assocs[1] {
		t.Fatalf("associations left %v, want only %s", got, assocs[1])
	}
	_, err = c.DisassociateTrunkInterface(ctx(t), &ec2.DisassociateTrunkInterfaceInput{AssociationId: aws.String(assocs[1]), ClientToken: aws.String(token)})
	wantCode(t, err, "IdempotentParameterMismatch")
	if got := trunkAssocs(t, c, trunk); len(got) != 1 {
		t.Fatalf("a refused call removed an association: %d left, want 1", len(got))
	}
}

// TestAssociateTrunkRetryIsIdempotent: an AssociateTrunkInterface whose
// answer is lost after EC2 made the association is retried by the SDK with
// the same token and answered that association, not refused as a VLAN or
// branch already in use.
func TestAssociateTrunkRetryIsIdempotent(t *testing.T) {
	sc := simtest.Basic()
	sc.Faults.Errors = []vpcsim.ErrorRule{{Action: "AssociateTrunkInterface", Code: "InternalError", Count: 1, After: true}}
	env := simtest.Start(t, sc)
	c := newEC2(env.EC2URL)
	trunk := newTrunk(t, c)
	branch := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})
	out, err := c.AssociateTrunkInterface(ctx(t), &ec2.AssociateTrunkInterfaceInput{BranchInterfaceId: aws.String(branch), TrunkInterfaceId: aws.String(trunk), VlanId: aws.Int32(7)}, retryAtOnce)
	if err != nil {
		t.Fatalf("AssociateTrunkInterface, answer lost once and retried: %v", err)
	}
	got := trunkAssocs(t, c, trunk)
	if len(got) != 1 || aws.ToString(got[0].AssociationId) != aws.ToString(out.InterfaceAssociation.AssociationId) {
		t.Fatalf("associations %v, want only the answered %s", got, aws.ToString(out.InterfaceAssociation.AssociationId))
	}
}
