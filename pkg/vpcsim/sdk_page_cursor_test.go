package vpcsim_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestNextTokenContinuesAfterDeletedItems: EC2's next page starts after
// the last item of the previous one (docs/compatibility.md, vpcsim). A cleaner that deletes each page's available ENIs before asking
// for the next page (or an ENI of an earlier page attached meanwhile) must
// still be handed every later ENI, none skipped.
func TestNextTokenContinuesAfterDeletedItems(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	cx := ctx(t)
	var want []string
	for range 12 {
		want = append(want, createENI(t, c, &ec2.CreateNetworkInterfaceInput{
			SubnetId: aws.String(simtest.NodeSubnetID),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{
				{Key: aws.String("leak"), Value: aws.String("yes")},
			}}},
		}))
	}
	in := &ec2.DescribeNetworkInterfacesInput{
		Filters:    []types.Filter{filter("status", "available"), filter("tag:leak", "yes")},
		MaxResults: aws.Int32(5),
	}
	var seen []string
	for p := ec2.NewDescribeNetworkInterfacesPaginator(c, in); p.HasMorePages(); {
		out, err := p.NextPage(cx)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range out.NetworkInterfaces {
			id := aws.ToString(e.NetworkInterfaceId)
			seen = append(seen, id)
			must[*ec2.DeleteNetworkInterfaceOutput](t)(c.DeleteNetworkInterface(cx, &ec2.DeleteNetworkInterfaceInput{NetworkInterfaceId: aws.String(id)}))
		}
	}
	slices.Sort(seen)
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Errorf("deleting page by page saw %d of %d ENIs: %v, want %v", len(seen), len(want), seen, want)
	}
}

// DescribeTags pages by position in its list as every other describe does:
// a tag deleted from an earlier page does not make the next page skip one.
// Before, its NextToken was an offset, so deleting each page's tags before
// asking for the next page skipped as many later tags as were deleted.
func TestDescribeTagsNextTokenContinuesAfterDeletedTags(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	cx := ctx(t)
	var want []string
	for range 12 {
		id := createENI(t, c, &ec2.CreateNetworkInterfaceInput{
			SubnetId: aws.String(simtest.NodeSubnetID),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{
				{Key: aws.String("leak"), Value: aws.String("yes")},
			}}},
		})
		want = append(want, id)
	}
	in := &ec2.DescribeTagsInput{Filters: []types.Filter{filter("key", "leak")}, MaxResults: aws.Int32(5)}
	var seen []string
	for p := ec2.NewDescribeTagsPaginator(c, in); p.HasMorePages(); {
		out, err := p.NextPage(cx)
		if err != nil {
			t.Fatal(err)
		}
		for _, tag := range out.Tags {
			id := aws.ToString(tag.ResourceId)
			seen = append(seen, id)
			must[*ec2.DeleteTagsOutput](t)(c.DeleteTags(cx, &ec2.DeleteTagsInput{Resources: []string{id}, Tags: []types.Tag{{Key: aws.String("leak")}}}))
		}
	}
	slices.Sort(seen)
	slices.Sort(want)
	if !slices.Equal(seen, want) {
		t.Errorf("deleting page by page saw %d of %d tags: %v, want %v", len(seen), len(want), seen, want)
	}
}
