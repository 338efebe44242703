package vpcsim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// DescribeAvailabilityZones as EC2 answers it: a zone the region does not
// have is InvalidParameterValue (not an empty list), filters narrow the
// answer, and an unknown filter name is refused.
func TestDescribeAvailabilityZonesNamesAndFilters(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	zoneNames := func(out *ec2.DescribeAvailabilityZonesOutput) []string {
		var names []string
		for _, z := range out.AvailabilityZones {
			names = append(names, aws.ToString(z.ZoneName))
		}
		return names
	}

	_, err := c.DescribeAvailabilityZones(ctx(t), &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{"us-west-2a", "us-west-2z"}})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.DescribeAvailabilityZones(ctx(t), &ec2.DescribeAvailabilityZonesInput{ZoneIds: []string{"usw2-az9"}})
	wantCode(t, err, "InvalidParameterValue")
	_, err = c.DescribeAvailabilityZones(ctx(t), &ec2.DescribeAvailabilityZonesInput{Filters: []types.Filter{{Name: aws.String("no-such-filter"), Values: []string{"x"}}}})
	wantCode(t, err, "InvalidParameterValue")

	out := must[*ec2.DescribeAvailabilityZonesOutput](t)(c.DescribeAvailabilityZones(ctx(t), &ec2.DescribeAvailabilityZonesInput{
		Filters: []types.Filter{{Name: aws.String("zone-name"), Values: []string{"us-west-2b"}}}}))
	if got := zoneNames(out); len(got) != 1 || got[0] != "us-west-2b" {
		t.Errorf("zone-name=us-west-2b: %v", got)
	}
	out = must[*ec2.DescribeAvailabilityZonesOutput](t)(c.DescribeAvailabilityZones(ctx(t), &ec2.DescribeAvailabilityZonesInput{ZoneIds: []string{"usw2-az3"}}))
	if got := zoneNames(out); len(got) != 1 || got[0] != "us-west-2c" {
		t.Errorf("ZoneIds=[usw2-az3]: %v, want [us-west-2c]", got)
	}
	out = must[*ec2.DescribeAvailabilityZonesOutput](t)(c.DescribeAvailabilityZones(ctx(t), &ec2.DescribeAvailabilityZonesInput{}))
	if got := zoneNames(out); len(got) != 3 {
		t.Errorf("all zones: %v, want the scenario's three", got)
	}
}
