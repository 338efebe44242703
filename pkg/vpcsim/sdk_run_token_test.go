package vpcsim_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// retryAtOnce is the SDK's standard retryer without its backoff sleeps.
func retryAtOnce(o *ec2.Options) {
	o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
		so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
	})
}

// TestRunInstancesRetryIsIdempotent: the SDK sends one client token with
// every attempt of a RunInstances; when EC2 launched the instance but the
// answer was lost, the retry answers that launch instead of a second one.
func TestRunInstancesRetryIsIdempotent(t *testing.T) {
	sc := simtest.Basic()
	sc.Faults.Errors = []vpcsim.ErrorRule{{Action: "RunInstances", Code: "InternalError", Count: 1, After: true}}
	env := simtest.Start(t, sc)
	c := newEC2(env.EC2URL)
	before := len(env.Sim.State().Instances)
	out, err := c.RunInstances(ctx(t), &ec2.RunInstancesInput{
		InstanceType: "m5.large", SubnetId: aws.String(simtest.NodeSubnetID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
	}, retryAtOnce)
	if err != nil {
		t.Fatalf("RunInstances: %v", err)
	}
	if n := len(env.Sim.State().Instances) - before; n != 1 {
		t.Fatalf("%d instances launched for one call (answered %s), want 1", n, aws.ToString(out.Instances[0].InstanceId))
	}
	if got, want := aws.ToString(out.Instances[0].InstanceId), env.Sim.State().Instances[before].ID; got != want {
		t.Fatalf("retry answered %s, want the launched instance %s", got, want)
	}
}

// TestRunInstancesClientTokenComparesWholeRequest: the same token and request
// answer the first launch (its reservation and instances, even after they
// are terminated); the token with any other parameter is refused.
func TestRunInstancesClientTokenComparesWholeRequest(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	const token = "tok-run-instances"
	base := func() *ec2.RunInstancesInput {
		return &ec2.RunInstancesInput{
			InstanceType: "m5.large", SubnetId: aws.String(simtest.NodeSubnetID),
			SecurityGroupIds: []string{simtest.SecurityGroupID},
			MinCount:         aws.Int32(1), MaxCount: aws.Int32(2),
			TagSpecifications: []types.TagSpecification{{
				ResourceType: types.ResourceTypeInstance,
				Tags:         []types.Tag{{Key: aws.String("Name"), Value: aws.String("node")}},
			}},
			ClientToken: aws.String(token),
		}
	}
	ids := func(out *ec2.RunInstancesOutput) []string {
		var s []string
		for _, in := range out.Instances {
			s = append(s, aws.ToString(in.InstanceId))
		}
		return s
	}
	first := must[*ec2.RunInstancesOutput](t)(c.RunInstances(ctx(t), base()))
	if got := aws.ToString(first.Instances[0].ClientToken); got != token {
		t.Errorf("launched instance's clientToken = %q, want %q", got, token)
	}
	launched := len(env.Sim.State().Instances)
	again := must[*ec2.RunInstancesOutput](t)(c.RunInstances(ctx(t), base()))
	if a, b := ids(first), ids(again); len(a) != 2 || len(b) != 2 || a[0] != b[0] || a[1] != b[1] {
		t.Fatalf("same token and request answered %v, want the first launch %v", b, a)
	}
	if a, b := aws.ToString(first.ReservationId), aws.ToString(again.ReservationId); a != b {
		t.Errorf("retry answered reservation %s, want %s", b, a)
	}
	if n := len(env.Sim.State().Instances); n != launched {
		t.Fatalf("%d instances after the retry, want %d", n, launched)
	}

	variants := map[string]func(in *ec2.RunInstancesInput){
		"instance type": func(in *ec2.RunInstancesInput) { in.InstanceType = "m5.xlarge" },
		"subnet":        func(in *ec2.RunInstancesInput) { in.SubnetId = aws.String(simtest.NodeSubnetBID) },
		"max count":     func(in *ec2.RunInstancesInput) { in.MaxCount = aws.Int32(1) },
		"groups": func(in *ec2.RunInstancesInput) {
			in.SecurityGroupIds = []string{simtest.SecurityGroupID, simtest.SecurityGroup2ID}
		},
		"tag value": func(in *ec2.RunInstancesInput) { in.TagSpecifications[0].Tags[0].Value = aws.String("other") },
		// a parameter vpcsim does not model still belongs to the request
		"ebs optimized": func(in *ec2.RunInstancesInput) { in.EbsOptimized = aws.Bool(true) },
	}
	for name, change := range variants {
		t.Run(name, func(t *testing.T) {
			in := base()
			change(in)
			_, err := c.RunInstances(ctx(t), in)
			wantCode(t, err, "IdempotentParameterMismatch")
		})
	}
	if n := len(env.Sim.State().Instances); n != launched {
		t.Fatalf("%d instances after the refusals, want %d", n, launched)
	}

	// the token outlives the instances: a late retry does not launch again
	for _, id := range ids(first) {
		if err := env.Sim.TerminateInstance(id); err != nil {
			t.Fatal(err)
		}
	}
	late := must[*ec2.RunInstancesOutput](t)(c.RunInstances(ctx(t), base()))
	if a, b := ids(first), ids(late); len(b) != 2 || a[0] != b[0] || a[1] != b[1] {
		t.Fatalf("same token after termination answered %v, want %v", b, a)
	}
	if got := late.Instances[0].State.Name; got != types.InstanceStateNameTerminated {
		t.Errorf("late retry reports state %q, want terminated", got)
	}
	if n := len(env.Sim.State().Instances); n != launched {
		t.Fatalf("%d instances after the late retry, want %d", n, launched)
	}
}
