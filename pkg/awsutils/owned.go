package awsutils

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// OwnedENIsQuery selects ENIs the VPC resource controller or the CNI made
// (eks:eni:owner is either's), for the controller's cleaners.
type OwnedENIsQuery struct {
	// VPCID limits the query to one VPC; empty: every VPC.
	VPCID string
	// Available keeps only ENIs in status available.
	Available bool
	// InstanceID keeps only ENIs tagged with this instance.
	InstanceID string
	// AnyTagKey keeps only ENIs carrying at least one of these tag keys.
	AnyTagKey []string
}

// OwnedENIs runs one paged DescribeNetworkInterfaces for q.
func (e *EC2) OwnedENIs(ctx context.Context, q OwnedENIsQuery) ([]ENI, error) {
	filters := []types.Filter{{Name: aws.String("tag:" + TagENIOwner), Values: []string{ENIOwnerController, ENIOwnerCNI}}}
	if q.VPCID != "" {
		filters = append(filters, types.Filter{Name: aws.String("vpc-id"), Values: []string{q.VPCID}})
	}
	if q.Available {
		filters = append(filters, types.Filter{Name: aws.String("status"), Values: []string{string(types.NetworkInterfaceStatusAvailable)}})
	}
	if q.InstanceID != "" {
		filters = append(filters, types.Filter{Name: aws.String("tag:" + TagInstanceID), Values: []string{q.InstanceID}})
	}
	if len(q.AnyTagKey) > 0 {
		filters = append(filters, types.Filter{Name: aws.String("tag-key"), Values: q.AnyTagKey})
	}
	out, err := e.describeAll(ctx, filters)
	if err != nil {
		return nil, fmt.Errorf("listing the controller's and the CNI's ENIs: %w", err)
	}
	return out, nil
}
