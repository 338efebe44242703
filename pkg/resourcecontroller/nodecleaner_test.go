package resourcecontroller

import (
	"slices"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// At most n cleanups run at once, one per node: a second start for a node
// whose cleanup runs is dropped (it ends with its own), and a start with
// every slot taken is busy (requeued).
func TestNodeCleanerBounds(t *testing.T) {
	n := newNodeCleaner(1)
	if ok, busy := n.start("a"); !ok || busy {
		t.Fatalf("first start: %v %v", ok, busy)
	}
	if ok, busy := n.start("a"); ok || busy {
		t.Errorf("a again while it runs: started %v busy %v, want neither", ok, busy)
	}
	if ok, busy := n.start("b"); ok || !busy {
		t.Errorf("b with the one slot taken: started %v busy %v, want busy", ok, busy)
	}
	n.done("a")
	if ok, busy := n.start("b"); !ok || busy {
		t.Errorf("b after a is done: started %v busy %v", ok, busy)
	}
}

// A gone node's branches go whatever their status unless a live node's
// trunk holds them; its other ENIs only when available.
func TestGoneNodeENIs(t *testing.T) {
	br := func(id, trunk, status string) awsutils.ENI {
		return awsutils.ENI{ID: id, Status: status, Tags: map[string]string{awsutils.TagTrunkENIID: trunk}}
	}
	got := goneNodeENIs([]awsutils.ENI{
		br("eni-branch-inuse", "eni-oldtrunk", "in-use"),
		br("eni-branch-held", "eni-livetrunk", "in-use"),
		{ID: "eni-cni-available", Status: "available"},
		{ID: "eni-cni-attached", Status: "in-use"},
		{ID: "eni-trunk-attached", Status: "in-use", InterfaceType: "trunk"},
	}, func(trunk string) bool { return trunk == "eni-livetrunk" })
	if want := []string{"eni-branch-inuse", "eni-cni-available"}; !slices.Equal(got, want) {
		t.Errorf("deleted %v, want %v", got, want)
	}
}
