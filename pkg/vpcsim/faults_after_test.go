package vpcsim_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
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
