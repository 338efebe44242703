package awsutils

import (
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestSecurityGroupsOnVanishedENICountOutOfSyncAsUpstream: setting the
// security groups of an ENI EC2 no longer has (ipamd applies the primary
// ENI's new groups to the ENIs it holds) counts, besides the failed call,
// awscni_aws_api_error_count{api="IMDSMetaDataOutOfSync"}, as upstream's
// does (docs/compatibility.md, "Metrics").
func TestSecurityGroupsOnVanishedENICountOutOfSyncAsUpstream(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e, scrape := meteredEC2(t, env)
	ctx := testCtx(t)
	inst, _ := node(t, e)
	eni, err := e.CreateENI(ctx, CreateENIRequest{InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.ModifySecurityGroups(ctx, eni.ID, inst.SecurityGroups); err != nil {
		t.Fatal(err)
	}
	if err := e.DeleteENI(ctx, eni.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.ModifySecurityGroups(ctx, eni.ID, inst.SecurityGroups); !IsNotFound(err) {
		t.Fatalf("ModifySecurityGroups on a deleted ENI: %v, want not found", err)
	}
	s := scrape()
	for k, want := range map[string]float64{
		`awscni_aws_api_error_count{api="IMDSMetaDataOutOfSync",error="InvalidNetworkInterfaceID.NotFound"}`:           1,
		`awscni_aws_api_error_count{api="ModifyNetworkInterfaceAttribute",error="InvalidNetworkInterfaceID.NotFound"}`: 1,
		`awscni_ec2api_error_count{fn="ModifyNetworkInterfaceAttribute"}`:                                              1,
	} {
		if got := s[k]; got != want {
			t.Errorf("%s = %v after one granted and one not-found security-group change, want %v", k, got, want)
		}
	}
}
