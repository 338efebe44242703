package resourcecontroller

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// Only this cluster's controller branches of an unheld trunk whose
// instance is not kept are lost; they are grouped by
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
	kept := map[string]bool{"i-node": true, "i-cninode": true}
	held := func(trunk string) bool { return trunk == "eni-t-held" }
	got := lostBranches(found, "c", held, kept)
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
func TestKeptInstances(t *testing.T) {
	node := func(name, pid string) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{ProviderID: pid}}
	}
	cns := []k8s.CNINode{{Spec: k8s.CNINodeSpec{Tags: map[string]string{awsutils.TagInstanceID: "i-00000000000000002"}}}}
	got, _, err := keptInstances([]corev1.Node{node("a", "aws:///us-west-2a/i-00000000000000001"), node("b", "kind://docker/b")}, cns, allSettled)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"i-00000000000000001": true, "i-00000000000000002": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("named %v, want %v", got, want)
	}
	if _, _, err := keptInstances([]corev1.Node{node("a", "aws:///us-west-2a/i-00000000000000001"), node("c", "")}, cns, allSettled); !errors.Is(err, errNodeIdentityUnknown) {
		t.Errorf("with a node without providerID: err %v, want errNodeIdentityUnknown", err)
	}
}

// A Node that lost SGP is not kept once its pod-eni capacity is gone, nor
// is the instance its own CNINode names; it is while the capacity stays
// (within DeinitDelay), while its CNINode is missing, being deleted or of
// another instance, on EKS Auto Mode, or while another Node or CNINode
// names the instance.
func TestKeptInstancesUnmanaged(t *testing.T) {
	const (
		iLost     = "i-000000000000000a0"
		iSgp      = "i-000000000000000a1"
		iLabel    = "i-000000000000000a2"
		iDelay    = "i-000000000000000a3"
		iNocn     = "i-000000000000000a4"
		iDeleting = "i-000000000000000a5"
		iReused   = "i-000000000000000a6"
		iOld      = "i-000000000000000a7"
		iAuto     = "i-000000000000000a8"
		iShared   = "i-000000000000000a9"
	)
	type nodeSpec struct {
		name, inst string
		labels     map[string]string
		podENI     bool
	}
	mkNode := func(s nodeSpec) corev1.Node {
		n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: s.name, Labels: s.labels}, Spec: corev1.NodeSpec{ProviderID: "aws:///us-west-2a/" + s.inst}}
		if s.podENI {
			n.Status.Capacity = corev1.ResourceList{PodENIResource: resource.MustParse("9")}
		}
		return n
	}
	mkCN := func(name, inst string, sgp bool) k8s.CNINode {
		cn := k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: k8s.CNINodeSpec{Tags: map[string]string{awsutils.TagInstanceID: inst}}}
		if sgp {
			cn.Spec.Features = []k8s.CNINodeFeature{{Name: k8s.FeatureSecurityGroupsForPods}}
		}
		return cn
	}
	deleting := mkCN("n-deleting", iDeleting, false)
	deleting.DeletionTimestamp = &metav1.Time{}
	nodes := []corev1.Node{
		mkNode(nodeSpec{name: "n-lost", inst: iLost}),
		mkNode(nodeSpec{name: "n-sgp", inst: iSgp}),
		mkNode(nodeSpec{name: "n-label", inst: iLabel, labels: map[string]string{LabelHasTrunk: "false"}}),
		mkNode(nodeSpec{name: "n-delay", inst: iDelay, podENI: true}),
		mkNode(nodeSpec{name: "n-nocn", inst: iNocn}),
		mkNode(nodeSpec{name: "n-deleting", inst: iDeleting}),
		mkNode(nodeSpec{name: "n-reused", inst: iReused}),
		mkNode(nodeSpec{name: "n-auto", inst: iAuto, labels: map[string]string{labelComputeAut: "auto"}}),
		mkNode(nodeSpec{name: "n-shared", inst: iShared}),
	}
	cns := []k8s.CNINode{
		mkCN("n-lost", iLost, false),
		mkCN("n-sgp", iSgp, true),
		mkCN("n-label", iLabel, false),
		mkCN("n-delay", iDelay, false),
		deleting,
		mkCN("n-reused", iOld, false),
		mkCN("n-auto", iAuto, false),
		mkCN("n-shared", iShared, false),
		mkCN("n-other", iShared, true),
	}
	got, _, err := keptInstances(nodes, cns, allSettled)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{iSgp: true, iLabel: true, iDelay: true, iNocn: true, iDeleting: true,
		iReused: true, iOld: true, iAuto: true, iShared: true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("kept %v, want %v", got, want)
	}
}

// allSettled: every object was seen long enough ago.
func allSettled(types.UID) bool { return true }

// A Node that looks unmanaged for good is kept, and named, while it or its
// CNINode was first seen too recently: a Node registered again has no
// pod-eni yet, a CNINode made again no feature yet.
func TestKeptInstancesUnmanagedRecently(t *testing.T) {
	const inst = "i-000000000000000a0"
	for _, tc := range []struct {
		what     string
		young    types.UID
		wantKept bool
	}{
		{"both seen long ago", "", false},
		{"Node registered again", "node-uid", true},
		{"CNINode made again", "cninode-uid", true},
	} {
		n := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", UID: "node-uid"}, Spec: corev1.NodeSpec{ProviderID: "aws:///us-west-2a/" + inst}}
		cn := k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: "n", UID: "cninode-uid"}, Spec: k8s.CNINodeSpec{Tags: map[string]string{awsutils.TagInstanceID: inst}}}
		kept, recent, err := keptInstances([]corev1.Node{n}, []k8s.CNINode{cn}, func(uid types.UID) bool { return uid != tc.young })
		if err != nil {
			t.Fatal(err)
		}
		var wantRecent []string
		if tc.wantKept {
			wantRecent = []string{"n"}
		}
		if kept[inst] != tc.wantKept || !reflect.DeepEqual(recent, wantRecent) {
			t.Errorf("%s: kept %v recent %v, want kept %v recent %v", tc.what, kept, recent, tc.wantKept, wantRecent)
		}
	}
}

// An object's first sighting is kept across sweeps by uid, and forgotten
// once it is gone: one made again under the same name is new.
func TestFirstSeen(t *testing.T) {
	f := newFirstSeen()
	t0 := time.Unix(1000, 0)
	f.see([]types.UID{"a", "b"}, t0)
	got := f.see([]types.UID{"a", "c"}, t0.Add(time.Minute))
	if !got["a"].Equal(t0) || !got["c"].Equal(t0.Add(time.Minute)) {
		t.Errorf("seen %v, want a at t0 and c a minute later", got)
	}
	if got := f.see([]types.UID{"b"}, t0.Add(2*time.Minute)); !got["b"].Equal(t0.Add(2 * time.Minute)) {
		t.Errorf("b seen again after it was gone: %v, want new", got)
	}
}

// A branch a running pod's annotation names is spared; a completed pod's
// and an unclaimed one are not, and an instance left with none is dropped.
func TestSpareRunningClaims(t *testing.T) {
	ann := func(ids ...string) map[string]string {
		var enis []BranchENI
		for i, id := range ids {
			enis = append(enis, BranchENI{ENIID: id, MAC: "02:00:00:00:00:01", PrivateIP: "10.0.0.9", VlanID: i + 1})
		}
		raw, err := EncodeAnnotation(enis)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{PodENIAnnotation: raw}
	}
	pods := []corev1.Pod{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "run", UID: "u-run", Annotations: ann("eni-run")}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "done", UID: "u-done", Annotations: ann("eni-done")}, Status: corev1.PodStatus{Phase: corev1.PodSucceeded}},
	}
	lost := map[string][]BranchENI{
		"i-a": {{ENIID: "eni-run"}, {ENIID: "eni-done"}, {ENIID: "eni-orphan"}},
		"i-b": {{ENIID: "eni-run2"}},
	}
	pods = append(pods, corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "run2", UID: "u-run2", Annotations: ann("eni-run2")}})
	spared := spare(lost, runningClaims(pods))
	wantLost := map[string][]BranchENI{"i-a": {{ENIID: "eni-done"}, {ENIID: "eni-orphan"}}}
	if !reflect.DeepEqual(lost, wantLost) {
		t.Errorf("lost %v, want %v", lost, wantLost)
	}
	var got []string
	for _, c := range spared {
		got = append(got, c.eni+"@"+c.pod.Name)
	}
	slices.Sort(got)
	if want := []string{"eni-run2@run2", "eni-run@run"}; !reflect.DeepEqual(got, want) {
		t.Errorf("spared %v, want %v", got, want)
	}
}
