package vpcsim_test

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// A NextToken continues only the request it was issued for
// (docs/compatibility.md, vpcsim): used for another action or with other
// filters it is InvalidPaginationToken, as EC2 answers a token it did not
// issue. Before, vpcsim resumed at the token's position in whatever list
// the new request chose, so a client mixing tokens up silently got a
// wrong page (an ENI page resumed after a DescribeTags row: every ENI again).
// A different MaxResults continues right after the last item returned.
func TestNextTokenOnlyContinuesItsOwnRequest(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	cx := ctx(t)
	var enis []string
	for range 7 {
		enis = append(enis, createENI(t, c, &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)}))
	}
	tags := must[*ec2.DescribeTagsOutput](t)(c.DescribeTags(cx, &ec2.DescribeTagsInput{MaxResults: aws.Int32(5)}))
	if aws.ToString(tags.NextToken) == "" {
		t.Fatal("more than 5 tags: want a NextToken")
	}
	inSubnet := []types.Filter{filter("subnet-id", simtest.NodeSubnetID)}
	first := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{Filters: inSubnet, MaxResults: aws.Int32(5)}))
	tok := first.NextToken
	if aws.ToString(tok) == "" {
		t.Fatal("8 ENIs in pages of 5: want a NextToken")
	}

	_, err := c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{Filters: inSubnet, MaxResults: aws.Int32(5), NextToken: tags.NextToken})
	wantCode(t, err, "InvalidPaginationToken") // another action's token
	_, err = c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{Filters: []types.Filter{filter("status", "available")}, MaxResults: aws.Int32(5), NextToken: tok})
	wantCode(t, err, "InvalidPaginationToken") // other filters
	_, err = c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{MaxResults: aws.Int32(5), NextToken: tok})
	wantCode(t, err, "InvalidPaginationToken") // no filters

	// the same request with another page size continues after page one
	rest := must[*ec2.DescribeNetworkInterfacesOutput](t)(c.DescribeNetworkInterfaces(cx, &ec2.DescribeNetworkInterfacesInput{Filters: inSubnet, MaxResults: aws.Int32(10), NextToken: tok}))
	var seen []string
	for _, e := range append(first.NetworkInterfaces, rest.NetworkInterfaces...) {
		seen = append(seen, aws.ToString(e.NetworkInterfaceId))
	}
	if aws.ToString(rest.NextToken) != "" || len(seen) != 8 || !slices.IsSorted(seen) || !slices.Contains(seen, enis[6]) {
		t.Errorf("pages of 5 then 10 gave %v (next %q), want the 8 ENIs of the subnet once each", seen, aws.ToString(rest.NextToken))
	}
}
