package awsutils

import (
	"slices"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// EC2 may apply MaxResults before the filters, so a page of the
// leaked-ENI query can be empty while NextToken is set (vpcsim's
// Faults.PageBeforeFilter). The sweep must follow NextToken past such a
// page: every leaked ENI of ours is still found.
func TestLeakedENIsFollowNextTokenPastEmptyPages(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env, func(c *Config) { c.ClusterName = "prod"; c.LeakedPageSize = 5 })
	other := newTestEC2(t, env, func(c *Config) { c.ClusterName = "other" })
	ctx := testCtx(t)
	inst, _ := node(t, e)
	base := CreateENIRequest{InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups}
	// another cluster's ENIs take the first page (ids are sequential)
	for range 6 {
		if _, err := other.CreateENI(ctx, base); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for range 3 {
		eni, err := e.CreateENI(ctx, base)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, eni.ID)
	}
	setFaults(t, env.Sim, vpcsim.Faults{PageBeforeFilter: true})

	got, err := e.LeakedENIs(ctx, inst.VPCID, "prod")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, g := range got {
		ids = append(ids, g.ID)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, want) {
		t.Errorf("LeakedENIs past an empty page = %v, want %v", ids, want)
	}
}
