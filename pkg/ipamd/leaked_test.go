package ipamd

import (
	"context"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestLeakedENISweep: unattached ENIs this CNI created are deleted once
// their createdAt tag is old enough; an ENI without the tag is stamped
// first; attached ENIs and foreign ENIs are never touched.
func TestLeakedENISweep(t *testing.T) {
	times := fastTimes
	times.LeakedMinAge = time.Hour
	h := newHarness(t, harnessOpts{times: &times})
	ctx := context.Background()
	mk := func() string {
		e, err := h.ec2.CreateENI(ctx, awsutils.CreateENIRequest{InstanceID: "i-00000000000000099", SubnetID: simtest.NodeSubnetID})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	old, fresh, untagged := mk(), mk(), mk()
	oldTime := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	if err := h.ec2.CreateTags(ctx, old, map[string]string{awsutils.TagCreatedAt: oldTime}); err != nil {
		t.Fatal(err)
	}
	if err := h.ec2.CreateTags(ctx, untagged, map[string]string{awsutils.TagCreatedAt: "yesterday"}); err != nil {
		t.Fatal(err)
	}
	deleted, err := h.n.leaked.SweepLeaked(ctx, times.LeakedMinAge)
	if err != nil || deleted != 1 {
		t.Fatalf("sweep: deleted %d, %v; want 1", deleted, err)
	}
	left := map[string]map[string]string{}
	for _, e := range h.env.Sim.NetworkInterfaces() {
		left[e.ID] = e.Tags
	}
	if _, ok := left[old]; ok {
		t.Error("old leaked ENI not deleted")
	}
	if _, ok := left[fresh]; !ok {
		t.Error("young leaked ENI deleted")
	}
	if tags, ok := left[untagged]; !ok || tags[awsutils.TagCreatedAt] == "yesterday" {
		t.Errorf("ENI with an unreadable createdAt should be kept and stamped: %v", tags)
	}
	if len(left) != 3 {
		t.Errorf("attached ENIs must stay: %d ENIs left", len(left))
	}
}

// TestStartupDeletesOwnUnattachedENIs: an ENI this very node created but
// never attached (a crash between create and attach) is deleted at start,
// whatever its age; another node's young one stays. That one listing is the
// sweeper's first round: the periodic sweep comes a full LeakedSweep
// later, not within its start-up jitter.
func TestStartupDeletesOwnUnattachedENIs(t *testing.T) {
	times := fastTimes
	times.LeakedMinAge = time.Hour
	times.LeakedSweep = 1200 * time.Millisecond // start-up jitter: at most 100 ms
	h := newHarness(t, harnessOpts{noInit: true, times: &times})
	ctx := context.Background()
	mine, err := h.ec2.CreateENI(ctx, awsutils.CreateENIRequest{InstanceID: simtest.InstanceID, SubnetID: simtest.NodeSubnetID})
	if err != nil {
		t.Fatal(err)
	}
	other, err := h.ec2.CreateENI(ctx, awsutils.CreateENIRequest{InstanceID: "i-00000000000000099", SubnetID: simtest.NodeSubnetID})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, e := range h.env.Sim.NetworkInterfaces() {
		ids[e.ID] = true
	}
	if ids[mine.ID] || !ids[other.ID] {
		t.Errorf("after start: own leftover present=%v, other node's ENI present=%v", ids[mine.ID], ids[other.ID])
	}

	// An old leaked ENI that appears after the start is left to the next
	// round, which is a full period away.
	old, err := h.ec2.CreateENI(ctx, awsutils.CreateENIRequest{InstanceID: "i-00000000000000099", SubnetID: simtest.NodeSubnetID})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ec2.CreateTags(ctx, old.ID, map[string]string{
		awsutils.TagCreatedAt: time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)}); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	start := time.Now()
	go func() { defer close(done); h.n.leaked.run(rctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, 10*time.Second, "the periodic sweep to delete the old leaked ENI", func() bool {
		for _, e := range h.env.Sim.NetworkInterfaces() {
			if e.ID == old.ID {
				return false
			}
		}
		return true
	})
	if took := time.Since(start); took < times.LeakedSweep {
		t.Errorf("the first periodic sweep came %s after the start, want a full LeakedSweep (%s): the start-up listing is its first round",
			took, times.LeakedSweep)
	}
}
