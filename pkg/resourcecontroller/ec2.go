package resourcecontroller

import (
	"context"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// EC2 is what the controller needs from EC2; *awsutils.EC2 implements it.
type EC2 interface {
	Instance(ctx context.Context, instanceID string) (awsutils.InstanceInfo, error)
	InstanceType(ctx context.Context, instanceType string) (awsutils.InstanceTypeInfo, error)
	Subnet(ctx context.Context, id string) (awsutils.Subnet, error)
	DescribeENIs(ctx context.Context, ids []string) ([]awsutils.ENI, []string, error)
	CreateTrunkENI(ctx context.Context, req awsutils.TrunkRequest) (awsutils.ENI, error)
	CreateBranchENI(ctx context.Context, req awsutils.BranchRequest) (awsutils.ENI, error)
	AssociateBranch(ctx context.Context, branchID, trunkID string, vlan int) (string, error)
	DisassociateBranch(ctx context.Context, associationID string) error
	DeleteENI(ctx context.Context, eniID string) error
	BranchENIs(ctx context.Context, trunkID string) ([]awsutils.ENI, error)
	TaggedInstanceENIs(ctx context.Context, instanceID, description string) ([]awsutils.ENI, error)
	OwnedENIs(ctx context.Context, q awsutils.OwnedENIsQuery) ([]awsutils.ENI, error)
}

var _ EC2 = (*awsutils.EC2)(nil)
