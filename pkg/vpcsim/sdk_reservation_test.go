package vpcsim_test

import (
	"regexp"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// The instances one RunInstances launches form one reservation: its id,
// EC2-shaped, is the one DescribeInstances lists them under, and the
// answer carries the reservation's (empty) groupSet as EC2's does. Before,
// RunInstances answered a reservation id ("r-2") that no describe knew,
// no groupSet, and DescribeInstances listed each instance in a
// reservation of its own.
func TestRunInstancesReservationIsTheDescribedOne(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	run := must[*ec2.RunInstancesOutput](t)(c.RunInstances(ctx(t), &ec2.RunInstancesInput{
		InstanceType: types.InstanceTypeM5Large, SubnetId: aws.String(simtest.NodeSubnetID), MinCount: aws.Int32(2), MaxCount: aws.Int32(2),
	}))
	rid := aws.ToString(run.ReservationId)
	if !regexp.MustCompile(`^r-([0-9a-f]{8}|[0-9a-f]{17})$`).MatchString(rid) {
		t.Errorf("RunInstances reservation id %q, want r- and 8 or 17 hex digits", rid)
	}
	if run.Groups == nil {
		t.Errorf("RunInstances answered no groupSet")
	}
	var ids []string
	for _, in := range run.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	out := must[*ec2.DescribeInstancesOutput](t)(c.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{InstanceIds: ids}))
	if len(out.Reservations) != 1 || aws.ToString(out.Reservations[0].ReservationId) != rid || len(out.Reservations[0].Instances) != 2 {
		var got []string
		for _, r := range out.Reservations {
			got = append(got, aws.ToString(r.ReservationId))
		}
		t.Errorf("DescribeInstances lists the 2 instances in reservations %v, want one, %s", got, rid)
	}
}
