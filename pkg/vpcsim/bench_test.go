package vpcsim_test

import (
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// BenchmarkAssignUnassignManyNodes: one secondary IP assigned and released
// through the SDK in an account with 100 nodes (each node's IMDS snapshot
// is kept current).
func BenchmarkAssignUnassignManyNodes(b *testing.B) {
	sc := simtest.Basic()
	for i := 0; i < 99; i++ {
		sc.Instances = append(sc.Instances, vpcsim.InstanceSpec{ID: fmt.Sprintf("i-%017x", 1000+i), Type: "m5.large", Subnet: simtest.NodeSubnetID})
	}
	env := simtest.Start(b, sc)
	c := newEC2(env.EC2URL)
	inst, _ := env.Sim.Instance(simtest.InstanceID)
	eni := aws.String(inst.PrimaryENI)
	cx := b.Context()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		out, err := c.AssignPrivateIpAddresses(cx, &ec2.AssignPrivateIpAddressesInput{NetworkInterfaceId: eni, SecondaryPrivateIpAddressCount: aws.Int32(1)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.UnassignPrivateIpAddresses(cx, &ec2.UnassignPrivateIpAddressesInput{NetworkInterfaceId: eni, PrivateIpAddresses: []string{aws.ToString(out.AssignedPrivateIpAddresses[0].PrivateIpAddress)}}); err != nil {
			b.Fatal(err)
		}
	}
}
