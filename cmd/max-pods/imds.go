package main

import (
	"context"
	"fmt"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// typeFromIMDS reads the instance type of the node it runs on, and its
// region when withRegion (--instance-type-from-imds without -region), from
// instance metadata, and nothing else: an IPv6-only node has no local-ipv4.
// endpoint empty: the SDK's, honouring AWS_EC2_METADATA_SERVICE_ENDPOINT.
func typeFromIMDS(ctx context.Context, endpoint string, withRegion bool) (instanceType, region string, err error) {
	md, err := awsutils.NewMetadata(awsutils.Config{IMDSEndpoint: endpoint})
	if err != nil {
		return "", "", fmt.Errorf("-imds-endpoint %q: %w", endpoint, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if instanceType, err = md.InstanceType(ctx); err != nil {
		return "", "", err
	}
	if withRegion {
		if region, err = md.Region(ctx); err != nil {
			return "", "", err
		}
	}
	return instanceType, region, nil
}
