package awsutils

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// LeakedENIMinAge: a leaked-ENI candidate younger than this is left alone
// (its creator may still be attaching it).
const LeakedENIMinAge = 5 * time.Minute

// LeakedENIs lists candidate leaked ENIs: in the VPC, status available,
// carrying the instance_id tag key (and the cluster tag when clusterName is
// set), with a description starting "aws-K8S-". Paginated with
// Config.LeakedPageSize per page.
func (e *EC2) LeakedENIs(ctx context.Context, vpcID, clusterName string) ([]ENI, error) {
	if vpcID == "" {
		return nil, fmt.Errorf("listing leaked ENIs: empty VPC id")
	}
	filters := []types.Filter{
		{Name: aws.String("tag-key"), Values: []string{TagInstanceID}},
		{Name: aws.String("status"), Values: []string{string(types.NetworkInterfaceStatusAvailable)}},
		{Name: aws.String("vpc-id"), Values: []string{vpcID}},
	}
	if clusterName != "" {
		filters = append(filters, types.Filter{Name: aws.String("tag:" + TagClusterName), Values: []string{clusterName}})
	}
	p := ec2.NewDescribeNetworkInterfacesPaginator(e.api, &ec2.DescribeNetworkInterfacesInput{
		Filters:    filters,
		MaxResults: aws.Int32(int32(e.cfg.LeakedPageSize)),
	})
	// Upstream's sweep counts the listing, not its pages
	// (docs/compatibility.md, "Metrics").
	ctx, listed := e.listing(ctx, "DescribeNetworkInterfaces")
	var out []ENI
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			listed(err)
			return nil, fmt.Errorf("listing leaked ENIs in %s: %w", vpcID, err)
		}
		for _, ni := range page.NetworkInterfaces {
			if !strings.HasPrefix(aws.ToString(ni.Description), DescriptionPrefix) {
				continue
			}
			eni, err := parseENI(ni)
			if err != nil {
				return nil, err
			}
			out = append(out, eni)
		}
	}
	listed(nil)
	return out, nil
}

// LeakAction is what the leaked-ENI sweep does with one candidate.
type LeakAction int

const (
	// LeakSkip: too young; look again next sweep.
	LeakSkip LeakAction = iota
	// LeakStamp: no usable createdAt tag; stamp it now and look again next
	// sweep.
	LeakStamp
	// LeakDelete: old enough; delete it.
	LeakDelete
)

func (a LeakAction) String() string {
	switch a {
	case LeakSkip:
		return "skip"
	case LeakStamp:
		return "stamp"
	case LeakDelete:
		return "delete"
	}
	return fmt.Sprintf("LeakAction(%d)", int(a))
}

// DecideLeaked applies the age rule to a candidate from LeakedENIs. Unlike
// upstream, an unparsable createdAt is treated like a missing one (stamp,
// delete only on a later sweep) instead of stamping and deleting at once.
func DecideLeaked(tags map[string]string, now time.Time) LeakAction {
	v, ok := tags[TagCreatedAt]
	if !ok {
		return LeakStamp
	}
	created, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return LeakStamp
	}
	if now.Sub(created) < LeakedENIMinAge {
		return LeakSkip
	}
	return LeakDelete
}
