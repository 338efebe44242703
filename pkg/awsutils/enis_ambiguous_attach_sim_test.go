package awsutils

import (
	"slices"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestAllocateENIWhenTheAttachAnswerIsLost: EC2 attaches the ENI but the
// client hears an error (the answer fails after the action; with retries
// the retried attach then hears InvalidNetworkInterface.InUse). AllocateENI
// must leave no ENI the caller does not know about: either it returns the
// attached ENI at its real device index, or no new ENI exists in EC2.
func TestAllocateENIWhenTheAttachAnswerIsLost(t *testing.T) {
	for _, tc := range []struct {
		name     string
		attempts int
	}{
		{"no retry", 1},
		{"retried attach hears InUse", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := simtest.Start(t, simtest.Basic())
			e := newTestEC2(t, env, func(c *Config) { c.Retry.MaxAttempts = tc.attempts })
			ctx := testCtx(t)
			inst, _ := node(t, e)
			before := simENIIDs(env.Sim)

			setFaults(t, env.Sim, vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "AttachNetworkInterface", Code: "InternalError", Count: 1, After: true}}})
			eni, err := e.AllocateENI(ctx, AllocateENIRequest{CreateENIRequest: CreateENIRequest{
				InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups, SecondaryIPv4Count: 2,
			}})
			var unknown []string
			for _, id := range simENIIDs(env.Sim) {
				if !slices.Contains(before, id) && (err != nil || id != eni.ID) {
					unknown = append(unknown, id)
				}
			}
			if len(unknown) > 0 {
				sv, _ := simENI(env.Sim, unknown[0])
				t.Fatalf("AllocateENI: %v; ENIs in EC2 the caller was not given: %v (%+v)", err, unknown, sv.Attachment)
			}
			if err != nil {
				return // rolled back completely
			}
			sv, ok := simENI(env.Sim, eni.ID)
			if !ok || sv.Attachment == nil || eni.Attachment == nil || sv.Attachment.DeviceIndex != eni.Attachment.DeviceIndex ||
				sv.Attachment.ID != eni.Attachment.ID || !sv.Attachment.DeleteOnTermination {
				t.Fatalf("returned ENI %+v; EC2 has %+v (found %v), want the same attachment with delete-on-termination", eni.Attachment, sv.Attachment, ok)
			}
		})
	}
}

// TestCreateTrunkENIWhenTheAttachAnswerIsLost: the trunk's attach is
// applied but answered with an error. CreateTrunkENI must not report
// failure while a trunk it made stays attached to the instance.
func TestCreateTrunkENIWhenTheAttachAnswerIsLost(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env, func(c *Config) { c.Retry.MaxAttempts = 1 })
	ctx := testCtx(t)
	setFaults(t, env.Sim, vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "AttachNetworkInterface", Code: "InternalError", Count: 1, After: true}}})
	trunk, err := e.CreateTrunkENI(ctx, TrunkRequest{InstanceID: instanceID, SubnetID: simtest.NodeSubnetID, DeviceIndex: 2})
	var trunks []vpcsim.ENIView
	for _, v := range env.Sim.NetworkInterfaces() {
		if v.InterfaceType == "trunk" {
			trunks = append(trunks, v)
		}
	}
	if err != nil {
		if len(trunks) > 0 {
			t.Fatalf("CreateTrunkENI: %v; yet EC2 has trunk %s attached %+v", err, trunks[0].ID, trunks[0].Attachment)
		}
		return
	}
	if len(trunks) != 1 || trunks[0].ID != trunk.ID || trunks[0].Attachment == nil || !trunks[0].Attachment.DeleteOnTermination ||
		trunk.Attachment == nil || trunk.Attachment.Status != "attached" {
		t.Fatalf("returned trunk %+v; EC2 has %+v, want it attached with delete-on-termination", trunk, trunks)
	}
}
