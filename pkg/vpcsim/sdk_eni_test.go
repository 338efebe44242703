package vpcsim_test

import (
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/conformance"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

var basicWorld = conformance.World{InstanceID: simtest.InstanceID, SubnetID: simtest.NodeSubnetID, SecurityGroupID: simtest.SecurityGroupID}

func TestENILifecycleSDK(t *testing.T) {
	for _, mode := range []string{"secondary", "prefix", "ipv6"} {
		t.Run(mode, func(t *testing.T) {
			env := simtest.Start(t, simtest.Basic())
			conformance.ENILifecycle(t, newEC2(env.EC2URL), basicWorld, mode)
			// only the primary ENI is left and every address went back
			if n := len(env.Sim.NetworkInterfaces()); n != 1 {
				t.Fatalf("want 1 ENI left, have %d", n)
			}
		})
	}
}
