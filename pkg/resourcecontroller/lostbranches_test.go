package resourcecontroller

import (
	"reflect"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// Only this cluster's controller branches of an unheld trunk whose
// instance no Node or CNINode names are lost; they are grouped by
// instance.
func TestLostBranches(t *testing.T) {
	branch := func(id, inst, trunk, cluster string) awsutils.ENI {
		return awsutils.ENI{ID: id, Tags: awsutils.BranchENITags(inst, cluster, trunk, 1)}
	}
	cni := branch("eni-cni", "i-gone", "eni-t-gone", "c")
	cni.Tags[awsutils.TagENIOwner] = awsutils.ENIOwnerCNI
	found := []awsutils.ENI{
		branch("eni-lost-1", "i-gone", "eni-t-gone", "c"),
		branch("eni-lost-2", "i-gone", "eni-t-gone", "c"),
		branch("eni-lost-3", "i-gone2", "eni-t-gone2", "c"),
		branch("eni-other-cluster", "i-gone", "eni-t-gone", "d"),
		branch("eni-held", "i-gone", "eni-t-held", "c"),
		branch("eni-node", "i-node", "eni-t-node", "c"),
		branch("eni-cninode", "i-cninode", "eni-t-cninode", "c"),
		cni,
		{ID: "eni-trunk", Tags: awsutils.ControllerENITags("i-gone", "c")},
	}
	named := map[string]bool{"i-node": true, "i-cninode": true}
	held := func(trunk string) bool { return trunk == "eni-t-held" }
	got := lostBranches(found, "c", held, named)
	want := map[string][]BranchENI{
		"i-gone":  {{ENIID: "eni-lost-1"}, {ENIID: "eni-lost-2"}},
		"i-gone2": {{ENIID: "eni-lost-3"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lost %v, want %v", got, want)
	}
}
