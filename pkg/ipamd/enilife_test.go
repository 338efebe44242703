package ipamd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestENILifecycleFailuresLeakNothing injects a failure at every step of
// the ENI life cycle (create, attach, host networking) and checks that
// vpcsim is left with only the primary ENI (delete-on-termination: see
// TestDeleteOnTerminationFailureKeepsENI).
func TestENILifecycleFailuresLeakNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		action string // EC2 action failing; "" = host networking fails
	}{
		{"create fails", "CreateNetworkInterface"},
		{"attach fails", "AttachNetworkInterface"},
		{"host networking fails", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmENITarget = 2 }})
			if tc.action != "" {
				if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: tc.action, Code: "UnauthorizedOperation", Count: 1}}}); err != nil {
					t.Fatal(err)
				}
			} else {
				h.host.mu.Lock()
				h.host.setupErr = errors.New("injected: link not found")
				h.host.mu.Unlock()
			}
			ctx := context.Background()
			h.n.PoolCycle(ctx) // fills the primary, then fails to add an ENI
			enis := h.env.Sim.NetworkInterfaces()
			if len(enis) != 1 || enis[0].Attachment == nil {
				t.Fatalf("after a failed ENI allocation vpcsim has %d ENIs (want the primary only): %+v", len(enis), enis)
			}
			_, lastErr := h.state(0)
			if lastErr == nil {
				t.Error("the failure was not recorded for AddNetwork's error message")
			} else {
				t.Logf("recorded: %v", lastErr)
			}
			if h.host.wired() != 0 {
				t.Errorf("host networking left for %d ENIs", h.host.wired())
			}
			h.checkConsistent()
			// The fault was one-shot: the next cycle succeeds.
			h.n.PoolCycle(ctx)
			if got := h.simCounts(); got != (simCounts{2, 18, 0}) {
				t.Errorf("after recovery: %+v, want 2 ENIs with 18 addresses", got)
			}
			h.checkConsistent()
		})
	}
}

// TestDeviceIndexTakenBehindIpamdsBack: ipamd picks device indexes from its
// own view (saving a DescribeInstances per ENI); when another agent took
// that index, the attach fails, nothing leaks, and the next attempt asks
// EC2 for a free index.
func TestDeviceIndexTakenBehindIpamdsBack(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "m5.4xlarge", cfg: func(c *config.Config) { c.WarmENITarget = 2 }})
	ctx := context.Background()
	foreign, err := h.ec2.AllocateENI(ctx, awsutils.AllocateENIRequest{
		CreateENIRequest: awsutils.CreateENIRequest{InstanceID: simtest.InstanceID, SubnetID: simtest.NodeSubnetID},
		DeviceIndex:      1,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(ctx) // device 1 is taken: the attach fails and is undone
	if n := len(h.unattachedENIs()); n != 0 {
		t.Errorf("%d unattached ENIs after the failed attach", n)
	}
	h.n.PoolCycle(ctx)
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	devices := map[int]string{}
	for _, e := range inst.ENIs {
		if other, dup := devices[e.Attachment.DeviceIndex]; dup {
			t.Errorf("device %d used by %s and %s", e.Attachment.DeviceIndex, other, e.ID)
		}
		devices[e.Attachment.DeviceIndex] = e.ID
	}
	if len(inst.ENIs) != 3 || devices[1] != foreign.ID {
		t.Errorf("ENIs after retry: %v", devices)
	}
}

// TestFailedActionsBackOff: a persistent EC2 failure (here a missing IAM
// permission) costs one call, not one per pool cycle.
func TestFailedActionsBackOff(t *testing.T) {
	times := fastTimes
	times.FailureBackoff = time.Hour
	h := newHarness(t, harnessOpts{times: &times, cfg: func(c *config.Config) { c.WarmENITarget = 2 }})
	if err := h.env.Sim.SetFaults(vpcsimFaults("CreateNetworkInterface", "UnauthorizedOperation")); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		h.n.PoolCycle(context.Background())
	}
	if got := h.env.Sim.Stats().Calls["CreateNetworkInterface"]; got != 1 {
		t.Errorf("%d CreateNetworkInterface calls in 5 cycles, want 1", got)
	}
	starved, _ := h.state(0)
	if !strings.Contains(starved, "UnauthorizedOperation") || !strings.Contains(starved, "retrying after") {
		t.Errorf("reason %q", starved)
	}
}

// TestTerminateStopsAttachAndFree: after SIGTERM (Terminate) the pool
// manager neither attaches nor frees; AddNetwork still serves what the
// pool holds and otherwise says why it cannot grow.
func TestTerminateStopsAttachAndFree(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	ctx := context.Background()
	h.n.PoolCycle(ctx)
	h.n.Terminate()
	before := h.calls()
	pods := map[int]bool{}
	for i := range 9 {
		k := podKey(i)
		if _, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: k.NetworkName, ContainerId: k.ContainerID, IfName: k.IfName}); err != nil {
			t.Fatal(err)
		}
		pods[i] = true
	}
	h.n.PoolCycle(ctx)
	if d := callDelta(before, h.calls()); len(d) != 0 {
		t.Errorf("EC2 calls after Terminate: %v", d)
	}
	starved, _ := h.state(0)
	if !strings.Contains(starved, "shutting down") {
		t.Errorf("starvation reason after Terminate: %q", starved)
	}
}
