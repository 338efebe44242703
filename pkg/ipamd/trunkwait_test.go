package ipamd

import (
	"context"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// A branch pod whose ADD arrives before ipamd knows the node's trunk ENI
// waits for it within the ADD's deadline: the ADD asks for a reconcile at
// once instead of failing until the next periodic one (an hour here).
func TestBranchPodWaitsForTrunk(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 29, pods: map[string]PodInfo{
		"default/sgpp": {Found: true, UID: "u1", WantsBranchENI: true, BranchAnnotation: branchAnnotation},
	}}
	times := fastTimes
	times.Reconcile = time.Hour
	h := newHarness(t, harnessOpts{noInit: true, times: &times, kube: k, cfg: func(c *config.Config) {
		c.EnablePodENI = true
		c.IPCooldown = 0
	}})
	h.runDaemon()
	h.waitState(func(string, error) bool { return true })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		r   *rpc.AddNetworkReply
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "c-sgpp", IfName: "eth0",
			K8SPodNamespace: "default", K8SPodName: "sgpp"})
		done <- result{r, err}
	}()
	// The controller attaches the trunk at the highest device index.
	if _, err := h.ec2.CreateTrunkENI(ctx, awsutils.TrunkRequest{InstanceID: simtest.InstanceID, SubnetID: simtest.NodeSubnetID,
		SecurityGroups: []string{simtest.SecurityGroupID}, DeviceIndex: 2}); err != nil {
		t.Fatalf("attach the trunk: %v", err)
	}
	res := <-done
	if res.err != nil || !res.r.GetSuccess() || res.r.GetPodVlanId() != 3 || res.r.GetParentIfIndex() != 12 {
		t.Fatalf("branch pod ADD while the trunk arrives: %v, %v; want success on VLAN 3 with the trunk (ifindex 12) as parent", res.r, res.err)
	}
}
