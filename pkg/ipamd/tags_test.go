package ipamd

import (
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

func (h *harness) eniTags(id string) map[string]string {
	for _, e := range h.env.Sim.NetworkInterfaces() {
		if e.ID == id {
			return e.Tags
		}
	}
	h.t.Fatalf("ENI %s not in vpcsim", id)
	return nil
}

// TestPrimaryENITaggedOnce: start-up tags the primary ENI like every
// managed ENI (instance id, cluster name, owner), in one CreateTags call;
// a second start finds the tags there and makes no tagging call.
func TestPrimaryENITaggedOnce(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true, cfg: func(c *config.Config) { c.ClusterName = "blue" }})
	primary := h.primaryENI()
	if tags := h.eniTags(primary); tags[awsutils.TagInstanceID] != "" {
		t.Fatalf("setup: primary ENI already tagged: %v", tags)
	}
	before := h.calls()
	if err := h.n.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := callDelta(before, h.calls())["CreateTags"]; got != 1 {
		t.Errorf("first start made %d CreateTags calls, want 1", got)
	}
	tags := h.eniTags(primary)
	for k, want := range map[string]string{
		awsutils.TagInstanceID: simtest.InstanceID, awsutils.TagClusterName: "blue", awsutils.TagENIOwner: awsutils.ENIOwnerCNI,
	} {
		if tags[k] != want {
			t.Errorf("primary ENI tag %s=%q, want %q (tags %v)", k, tags[k], want, tags)
		}
	}
	if _, ok := tags[awsutils.TagCreatedAt]; ok {
		t.Errorf("primary ENI got a createdAt tag (the leaked-ENI sweep keys on it): %v", tags)
	}

	h.connect(fastTimes) // a restart
	before = h.calls()
	if err := h.n.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := callDelta(before, h.calls())["CreateTags"]; got != 0 {
		t.Errorf("second start made %d CreateTags calls, want none", got)
	}
}
