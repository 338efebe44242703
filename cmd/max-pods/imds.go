package main

import (
	"context"
	"fmt"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// typeFromIMDS reads the instance type and region of the node it runs on
// from the instance-identity document (--instance-type-from-imds); endpoint
// empty: the SDK's, honouring AWS_EC2_METADATA_SERVICE_ENDPOINT.
func typeFromIMDS(ctx context.Context, endpoint string) (instanceType, region string, err error) {
	md, err := awsutils.NewMetadata(awsutils.Config{IMDSEndpoint: endpoint})
	if err != nil {
		return "", "", fmt.Errorf("-imds-endpoint %q: %w", endpoint, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	id, err := md.Identity(ctx)
	if err != nil {
		return "", "", err
	}
	if id.InstanceType == "" {
		return "", "", fmt.Errorf("the instance-identity document names no instance type")
	}
	return id.InstanceType, id.Region, nil
}
