package awsutils

import (
	"slices"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// The trunk and branch life cycle through the real SDK against vpcsim:
// tags, device index, association, listing by tag, and deletion.
func TestTrunkBranchLifeCycleSim(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env, func(c *Config) { c.ClusterName = "c1" })
	ctx := testCtx(t)
	trunk, err := e.CreateTrunkENI(ctx, TrunkRequest{InstanceID: instanceID, SubnetID: simtest.NodeSubnetID, SecurityGroups: []string{simtest.SecurityGroupID}, ClusterName: "c1", DeviceIndex: 2})
	if err != nil {
		t.Fatal(err)
	}
	if trunk.InterfaceType != "trunk" || trunk.Attachment == nil || trunk.Attachment.DeviceIndex != 2 || !trunk.Attachment.DeleteOnTermination ||
		trunk.Description != TrunkDescription || trunk.Tags[TagENIOwner] != ENIOwnerController || trunk.Tags["kubernetes.io/cluster/c1"] != "owned" {
		t.Fatalf("trunk %+v attachment %+v", trunk, trunk.Attachment)
	}
	var ids []string
	for vlan := 1; vlan <= 2; vlan++ {
		b, err := e.CreateBranchENI(ctx, BranchRequest{InstanceID: instanceID, TrunkID: trunk.ID, VLAN: vlan, SubnetID: simtest.CustomSubnetAID, SecurityGroups: []string{simtest.SecurityGroup2ID}, ClusterName: "c1"})
		if err != nil {
			t.Fatal(err)
		}
		if !b.PrivateIPv4.IsValid() || b.MAC == "" || b.Tags[TagVLANID] != string(rune('0'+vlan)) || b.Tags[TagTrunkENIID] != trunk.ID {
			t.Fatalf("branch %+v", b)
		}
		assoc, err := e.AssociateBranch(ctx, b.ID, trunk.ID, vlan)
		if err != nil || assoc == "" {
			t.Fatalf("associate: %q %v", assoc, err)
		}
		ids = append(ids, b.ID)
	}
	listed, err := e.BranchENIs(ctx, trunk.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range listed {
		got = append(got, b.ID)
		if b.InterfaceType != "branch" || !slices.Equal(b.SecurityGroups, []string{simtest.SecurityGroup2ID}) {
			t.Errorf("listed branch %+v", b)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Fatalf("BranchENIs = %v, want %v", got, ids)
	}
	assocs, err := e.TrunkAssociations(ctx, trunk.ID)
	if err != nil || len(assocs) != 2 {
		t.Fatalf("associations %v %v", assocs, err)
	}
	for _, a := range assocs {
		if err := e.DisassociateBranch(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.DisassociateBranch(ctx, a.ID); err != nil {
			t.Fatalf("a second disassociation must count as done: %v", err)
		}
	}
	for _, id := range ids {
		if err := e.DeleteENI(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if listed, _ := e.BranchENIs(ctx, trunk.ID); len(listed) != 0 {
		t.Fatalf("branches left: %v", listed)
	}
}

// A trunk EC2 refuses (a type that cannot trunk) leaves no ENI behind, and
// an unknown group fails a branch with EC2's code.
func TestTrunkFailuresLeaveNothingSim(t *testing.T) {
	sc := simtest.Basic()
	sc.Instances[0].Type = "t3.medium"
	env := simtest.Start(t, sc)
	e := newTestEC2(t, env)
	ctx := testCtx(t)
	before := simENIIDs(env.Sim)
	_, err := e.CreateTrunkENI(ctx, TrunkRequest{InstanceID: instanceID, SubnetID: simtest.NodeSubnetID, DeviceIndex: 2})
	if Code(err) != "InvalidParameterValue" {
		t.Fatalf("trunk on t3.medium: %v", err)
	}
	if after := simENIIDs(env.Sim); !slices.Equal(after, before) {
		t.Fatalf("ENIs after a refused trunk: %v, before %v", after, before)
	}
	_, err = e.CreateBranchENI(ctx, BranchRequest{InstanceID: instanceID, TrunkID: "eni-00000000000000000", VLAN: 1, SubnetID: simtest.NodeSubnetID, SecurityGroups: []string{"sg-00000000000dead00"}})
	if Code(err) != "InvalidGroup.NotFound" {
		t.Fatalf("branch with an unknown group: %v", err)
	}
	if _, err := e.CreateBranchENI(ctx, BranchRequest{InstanceID: instanceID, SubnetID: simtest.NodeSubnetID, VLAN: 1}); err == nil {
		t.Fatal("a branch request without a trunk was accepted")
	}
}
