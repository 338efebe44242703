package vpcsim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// DescribeTags lists the tags of every kind CreateTags accepts, with EC2's
// resource types, and its filters select by resource, type and key (the
// cni-metrics-helper asks resource-id=<instance>, key=<tag>).
func TestDescribeTagsListsEveryTaggableKind(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	eni := createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})
	kinds := map[string]types.ResourceType{
		eni: types.ResourceTypeNetworkInterface, simtest.InstanceID: types.ResourceTypeInstance,
		simtest.NodeSubnetID: types.ResourceTypeSubnet, simtest.VPCID: types.ResourceTypeVpc,
		simtest.SecurityGroupID: types.ResourceTypeSecurityGroup,
	}
	for id := range kinds {
		must[*ec2.CreateTagsOutput](t)(c.CreateTags(ctx(t), &ec2.CreateTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String("probe"), Value: aws.String(id)}}}))
	}
	f := func(name, value string) types.Filter {
		return types.Filter{Name: aws.String(name), Values: []string{value}}
	}
	for id, kind := range kinds {
		out := must[*ec2.DescribeTagsOutput](t)(c.DescribeTags(ctx(t), &ec2.DescribeTagsInput{Filters: []types.Filter{f("resource-id", id), f("key", "probe")}}))
		if len(out.Tags) != 1 || aws.ToString(out.Tags[0].Value) != id || out.Tags[0].ResourceType != kind {
			t.Errorf("resource-id=%s key=probe: %+v, want one %s tag", id, out.Tags, kind)
		}
	}
	out := must[*ec2.DescribeTagsOutput](t)(c.DescribeTags(ctx(t), &ec2.DescribeTagsInput{Filters: []types.Filter{f("resource-type", "security-group")}}))
	if len(out.Tags) != 1 || aws.ToString(out.Tags[0].ResourceId) != simtest.SecurityGroupID {
		t.Errorf("resource-type=security-group: %+v, want the one tag of %s", out.Tags, simtest.SecurityGroupID)
	}
}
