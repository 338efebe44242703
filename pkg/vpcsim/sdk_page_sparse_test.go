package vpcsim_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// With Faults.PageBeforeFilter, MaxResults applies before the filters, as
// EC2 may apply it (docs/compatibility.md, vpcsim): a page of a filtered
// describe can be empty while NextToken is set, and a client following
// NextToken still gets every match. Before, every page but the last was
// full, so a client stopping at the first short or empty page was never
// caught.
func TestPageBeforeFilterGivesEmptyPagesWithNextToken(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	cx := ctx(t)
	// the instance's primary ENI and 6 untagged ENIs sort before the 3
	// tagged ones (ids are sequential), so the first page of 5 holds none
	for range 6 {
		createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)})
	}
	var want []string
	for range 3 {
		want = append(want, createENI(t, c, &ec2.CreateNetworkInterfaceInput{
			SubnetId: aws.String(simtest.NodeSubnetID),
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeNetworkInterface, Tags: []types.Tag{
				{Key: aws.String("leak"), Value: aws.String("yes")},
			}}},
		}))
	}
	if err := env.Sim.SetFaults(vpcsim.Faults{PageBeforeFilter: true}); err != nil {
		t.Fatal(err)
	}
	in := &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("tag:leak", "yes")}, MaxResults: aws.Int32(5)}
	var seen []string
	emptyWithToken := 0
	for p := ec2.NewDescribeNetworkInterfacesPaginator(c, in); p.HasMorePages(); {
		out, err := p.NextPage(cx)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.NetworkInterfaces) == 0 && aws.ToString(out.NextToken) != "" {
			emptyWithToken++
		}
		for _, e := range out.NetworkInterfaces {
			seen = append(seen, aws.ToString(e.NetworkInterfaceId))
		}
	}
	if emptyWithToken == 0 {
		t.Errorf("no empty page carried a NextToken; want MaxResults applied before the filters")
	}
	slices.Sort(seen)
	if !slices.Equal(seen, want) {
		t.Errorf("following NextToken saw %v, want %v", seen, want)
	}

	// the other paged describes page the same way: DescribeTags
	tags := 0
	emptyWithToken = 0
	tin := &ec2.DescribeTagsInput{Filters: []types.Filter{filter("key", "leak")}, MaxResults: aws.Int32(5)}
	for p := ec2.NewDescribeTagsPaginator(c, tin); p.HasMorePages(); {
		out, err := p.NextPage(cx)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Tags) < 5 && aws.ToString(out.NextToken) != "" {
			emptyWithToken++
		}
		tags += len(out.Tags)
	}
	if tags != 3 || emptyWithToken == 0 {
		t.Errorf("DescribeTags: %d tags, %d short pages with NextToken; want 3 tags and a short page", tags, emptyWithToken)
	}
}
