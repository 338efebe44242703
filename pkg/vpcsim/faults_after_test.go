package vpcsim_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestInjectedErrorAfterTheActionApplies: an "after" rule answers its code
// for a call whose effect is nonetheless in EC2's state.
func TestInjectedErrorAfterTheActionApplies(t *testing.T) {
	sc := simtest.Basic()
	sc.Faults.Errors = []vpcsim.ErrorRule{{Action: "AssignPrivateIpAddresses", Code: "InvalidParameterValue", Count: 1, After: true}}
	env := simtest.Start(t, sc)
	c := newEC2(env.EC2URL)
	inst, _ := env.Sim.Instance(simtest.InstanceID)
	_, err := c.AssignPrivateIpAddresses(ctx(t), &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: aws.String(inst.PrimaryENI), SecondaryPrivateIpAddressCount: aws.Int32(2)})
	wantCode(t, err, "InvalidParameterValue")
	if v, _ := env.Sim.Instance(simtest.InstanceID); len(v.ENIs[0].SecondaryIPs) != 2 {
		t.Fatalf("addresses after an applied call answered with an error: %v, want 2", v.ENIs[0].SecondaryIPs)
	}
}

// TestCreateNetworkInterfaceRetryIsIdempotent: the SDK sends one client
// token with every attempt of a CreateNetworkInterface; when EC2 made the
// ENI but the answer was lost, the retry answers that ENI instead of
// making a second.
func TestCreateNetworkInterfaceRetryIsIdempotent(t *testing.T) {
	sc := simtest.Basic()
	sc.Faults.Errors = []vpcsim.ErrorRule{{Action: "CreateNetworkInterface", Code: "InternalError", Count: 1, After: true}}
	env := simtest.Start(t, sc)
	c := newEC2(env.EC2URL)
	retrying := func(o *ec2.Options) {
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
		})
	}
	before := len(env.Sim.NetworkInterfaces())
	out, err := c.CreateNetworkInterface(ctx(t), &ec2.CreateNetworkInterfaceInput{SubnetId: aws.String(simtest.NodeSubnetID)}, retrying)
	if err != nil {
		t.Fatalf("CreateNetworkInterface: %v", err)
	}
	if n := len(env.Sim.NetworkInterfaces()) - before; n != 1 {
		t.Fatalf("%d ENIs made for one call (answered %s), want 1", n, aws.ToString(out.NetworkInterface.NetworkInterfaceId))
	}
}
