package ipamd

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestENIConfigCreatedAfterStartIsPickedUpPromptly: the node selects an
// ENIConfig that does not exist yet, so the pool backs off; failures that
// cost EC2 calls back off up to a minute (here an hour's first pause), but
// a missing ENIConfig costs none, and once the user creates it the next
// ENI comes within ENIConfigRetry, not after the long pause.
func TestENIConfigCreatedAfterStartIsPickedUpPromptly(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 110,
		eniConfig: ENIConfig{Name: "pods-a"}, eniErr: errors.New(`node "n1" selects ENIConfig "pods-a", which does not exist`)}
	times := fastTimes
	times.FailureBackoff = time.Hour
	times.ENIConfigRetry = 50 * time.Millisecond
	h := newHarness(t, harnessOpts{kube: k, times: &times,
		cfg: func(c *config.Config) { c.CustomNetworking = true; c.WarmIPTarget = 3 }})
	ctx := context.Background()
	for range 3 {
		h.n.PoolCycle(ctx)
	}
	if _, err := h.state(0); err == nil {
		t.Fatal("no cause recorded while the ENIConfig is missing")
	}
	if got := h.simCounts(); got.ENIs != 1 {
		t.Fatalf("ENIs with the ENIConfig missing: %+v, want the primary alone", got)
	}

	k.mu.Lock()
	k.eniConfig = ENIConfig{Name: "pods-a", Subnet: simtest.CustomSubnetAID, SecurityGroups: []string{simtest.SecurityGroup2ID}}
	k.eniErr = nil
	k.mu.Unlock()
	waitFor(t, 5*time.Second, "an ENI in the ENIConfig's subnet", func() bool {
		h.n.PoolCycle(ctx)
		for _, e := range h.env.Sim.NetworkInterfaces() {
			if e.SubnetID == simtest.CustomSubnetAID {
				return true
			}
		}
		return false
	})
	h.checkConsistent()
}
