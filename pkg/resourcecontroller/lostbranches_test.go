package resourcecontroller

import (
	"errors"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
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

// A Node without a providerID may be any instance: nothing is swept until
// it has one. One with another provider's id names no EC2 instance.
func TestNamedInstances(t *testing.T) {
	node := func(name, pid string) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{ProviderID: pid}}
	}
	cns := []k8s.CNINode{{Spec: k8s.CNINodeSpec{Tags: map[string]string{awsutils.TagInstanceID: "i-00000000000000002"}}}}
	got, err := namedInstances([]corev1.Node{node("a", "aws:///us-west-2a/i-00000000000000001"), node("b", "kind://docker/b")}, cns)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"i-00000000000000001": true, "i-00000000000000002": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("named %v, want %v", got, want)
	}
	if _, err := namedInstances([]corev1.Node{node("a", "aws:///us-west-2a/i-00000000000000001"), node("c", "")}, cns); !errors.Is(err, errNodeIdentityUnknown) {
		t.Errorf("with a node without providerID: err %v, want errNodeIdentityUnknown", err)
	}
}
