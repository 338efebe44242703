package vpcsim_test

import (
	"errors"
	"net/http"
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// DryRun, as EC2 documents it: with the permission the answer is the
// DryRunOperation error (HTTP 412) and nothing changes; without it,
// UnauthorizedOperation (HTTP 403).
func TestDryRunAnswers(t *testing.T) {
	sc := simtest.Basic()
	sc.DenyActions = []string{"DeleteNetworkInterface"}
	env := simtest.Start(t, sc)
	c := newEC2(env.EC2URL)
	inst, err := env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	status := func(err error) int {
		var re *awshttp.ResponseError
		if errors.As(err, &re) {
			return re.HTTPStatusCode()
		}
		return 0
	}
	before := env.Sim.State()
	_, err = c.ModifyNetworkInterfaceAttribute(ctx(t), &ec2.ModifyNetworkInterfaceAttributeInput{DryRun: aws.Bool(true),
		NetworkInterfaceId: aws.String(inst.PrimaryENI), SourceDestCheck: &types.AttributeBooleanValue{Value: aws.Bool(false)}})
	wantCode(t, err, "DryRunOperation")
	if status(err) != http.StatusPreconditionFailed {
		t.Errorf("DryRunOperation with HTTP %d, want 412", status(err))
	}
	_, err = c.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{DryRun: aws.Bool(true), SubnetId: aws.String(simtest.NodeSubnetID)})
	wantCode(t, err, "DryRunOperation")
	if after := env.Sim.State(); !reflect.DeepEqual(before, after) {
		t.Errorf("a dry run changed the account")
	}
	_, err = c.DeleteNetworkInterface(ctx(t), &ec2.DeleteNetworkInterfaceInput{DryRun: aws.Bool(true), NetworkInterfaceId: aws.String(inst.PrimaryENI)})
	wantCode(t, err, "UnauthorizedOperation")
	if status(err) != http.StatusForbidden {
		t.Errorf("UnauthorizedOperation with HTTP %d, want 403", status(err))
	}
}
