package awsutils

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Subnet tags of upstream's subnet discovery.
const (
	// TagSubnetRoleCNI marks a subnet for pod ENIs; value "0" excludes it.
	TagSubnetRoleCNI = "kubernetes.io/role/cni"
	// TagSubnetClusterPrefix + <cluster name> scopes a subnet to clusters.
	TagSubnetClusterPrefix = "cni.networking.k8s.aws/cluster/"
)

// Subnets lists the subnets of a VPC in one AZ, most free addresses first
// (ties by id, so the order is stable).
func (e *EC2) Subnets(ctx context.Context, vpcID, az string) ([]Subnet, error) {
	if vpcID == "" || az == "" {
		return nil, fmt.Errorf("describing subnets: VPC id %q and AZ %q must both be set", vpcID, az)
	}
	p := ec2.NewDescribeSubnetsPaginator(e.api, &ec2.DescribeSubnetsInput{
		Filters: []types.Filter{
			{Name: aws.String("vpc-id"), Values: []string{vpcID}},
			{Name: aws.String("availability-zone"), Values: []string{az}},
		},
	})
	var out []Subnet
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing subnets of %s in %s: %w", vpcID, az, err)
		}
		for _, s := range page.Subnets {
			sn, err := parseSubnet(s)
			if err != nil {
				return nil, err
			}
			out = append(out, sn)
		}
	}
	slices.SortFunc(out, func(a, b Subnet) int {
		return cmp.Or(cmp.Compare(b.AvailableIPs, a.AvailableIPs), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

func parseSubnet(s types.Subnet) (Subnet, error) {
	id := aws.ToString(s.SubnetId)
	sn := Subnet{
		ID:           id,
		VPCID:        aws.ToString(s.VpcId),
		AZ:           aws.ToString(s.AvailabilityZone),
		AvailableIPs: int(aws.ToInt32(s.AvailableIpAddressCount)),
		Tags:         tagMap(s.Tags),
	}
	var errs []error
	if c := aws.ToString(s.CidrBlock); c != "" {
		p, err := parsePrefix("subnet "+id, c)
		errs = append(errs, err)
		sn.CIDR = p
	}
	for _, a := range s.Ipv6CidrBlockAssociationSet {
		p, err := parsePrefix("subnet "+id, aws.ToString(a.Ipv6CidrBlock))
		errs = append(errs, err)
		if err == nil {
			sn.IPv6CIDRs = append(sn.IPv6CIDRs, p)
		}
	}
	return sn, errors.Join(errs...)
}

// SubnetEligible is upstream's subnet-discovery rule for placing a NEW ENI:
// a subnet tagged kubernetes.io/role/cni=0 never qualifies; an untagged
// subnet qualifies only if it is the node's primary subnet; a tagged one
// qualifies if it passes the cluster-tag check (ClusterTagsMatch).
func SubnetEligible(s Subnet, primarySubnetID, clusterName string) bool {
	role, tagged := s.Tags[TagSubnetRoleCNI]
	switch {
	case tagged && role == "0":
		return false
	case !tagged:
		return s.ID == primarySubnetID
	default:
		return ClusterTagsMatch(s.Tags, clusterName)
	}
}

// SubnetExcluded is upstream's rule for EXISTING ENIs: an ENI in a subnet
// tagged kubernetes.io/role/cni=0, or tagged otherwise but scoped to other
// clusters, gets no new pod IPs. Untagged subnets are not excluded.
func SubnetExcluded(s Subnet, clusterName string) bool {
	role, tagged := s.Tags[TagSubnetRoleCNI]
	if !tagged {
		return false
	}
	return role == "0" || !ClusterTagsMatch(s.Tags, clusterName)
}

// ClusterTagsMatch: if any tag key starts with
// cni.networking.k8s.aws/cluster/, one of them must name clusterName. The
// check is skipped when clusterName is empty.
func ClusterTagsMatch(tags map[string]string, clusterName string) bool {
	if clusterName == "" {
		return true
	}
	scoped := false
	for k := range tags {
		if name, ok := strings.CutPrefix(k, TagSubnetClusterPrefix); ok {
			scoped = true
			if name == clusterName {
				return true
			}
		}
	}
	return !scoped
}
