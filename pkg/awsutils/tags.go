package awsutils

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Tag keys and values the CNI puts on ENIs (wire-compatible with upstream).
const (
	TagInstanceID  = "node.k8s.amazonaws.com/instance_id"
	TagCreatedAt   = "node.k8s.amazonaws.com/createdAt"
	TagNoManage    = "node.k8s.amazonaws.com/no_manage"
	TagClusterName = "cluster.k8s.amazonaws.com/name"
	TagENIOwner    = "eks:eni:owner"
	ENIOwnerCNI    = "amazon-vpc-cni"

	// DescriptionPrefix starts the description of every ENI we create.
	DescriptionPrefix = "aws-K8S-"

	// reservedTagMarker: additional tags may not use keys containing it.
	reservedTagMarker = "k8s.amazonaws.com"
)

// ENIDescription is the description upstream gives ENIs it creates.
func ENIDescription(instanceID string) string { return DescriptionPrefix + instanceID }

// ENITags returns the tags of a new ENI: instance id, creation time
// (RFC 3339), the cluster tags when clusterName is set, and the additional
// tags minus reserved keys.
func ENITags(instanceID, clusterName string, additional map[string]string, now time.Time) map[string]string {
	kept, _ := FilterAdditionalTags(additional)
	tags := make(map[string]string, len(kept)+4)
	maps.Copy(tags, kept)
	tags[TagInstanceID] = instanceID
	tags[TagCreatedAt] = now.UTC().Format(time.RFC3339)
	if clusterName != "" {
		tags[TagClusterName] = clusterName
		tags[TagENIOwner] = ENIOwnerCNI
	}
	return tags
}

// sdkTags converts tags to the SDK form, sorted by key so requests are
// deterministic.
func sdkTags(tags map[string]string) []types.Tag {
	out := make([]types.Tag, 0, len(tags))
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		out = append(out, types.Tag{Key: aws.String(k), Value: aws.String(tags[k])})
	}
	return out
}

func tagMap(tags []types.Tag) map[string]string {
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

// CreateTags sets tags on an EC2 resource (an ENI for ipamd).
func (e *EC2) CreateTags(ctx context.Context, resourceID string, tags map[string]string) error {
	if resourceID == "" {
		return fmt.Errorf("CreateTags: empty resource id")
	}
	if len(tags) == 0 {
		return nil
	}
	_, err := e.api.CreateTags(ctx, &ec2.CreateTagsInput{
		Resources: []string{resourceID},
		Tags:      sdkTags(tags),
	})
	if err != nil {
		return fmt.Errorf("tagging %s with %s: %w", resourceID, strings.Join(slices.Sorted(maps.Keys(tags)), ","), err)
	}
	return nil
}
