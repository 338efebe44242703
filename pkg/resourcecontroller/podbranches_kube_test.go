package resourcecontroller

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// createPodAsking creates a pod bound to node whose first container asks
// for n branch ENIs; it matches no policy, so the webhook leaves it alone
// and its branches get the node's groups.
func (h *harness) createPodAsking(name, node string, n int64) {
	h.t.Helper()
	q := *resource.NewQuantity(n, resource.DecimalSI)
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: h.ns},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "none",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{PodENIResource: q}, Limits: corev1.ResourceList{PodENIResource: q}}}}}}
	if err := h.admin.Create(context.Background(), p); err != nil {
		h.t.Fatal(err)
	}
}

// TestKubePodBranchesMadeAtOnce: a pod asking for 3 branch ENIs while EC2
// holds every branch create. All three creates must be at EC2 at once,
// and once EC2 answers the pod is annotated with its three branches, each
// associated with the trunk on its VLAN. Before, the controller made them
// one after another: the pod's time to its annotation was the sum of the
// creates, and here only one create was ever held (until EC2's client
// gave up on it, 10 s a try).
func TestKubePodBranchesMadeAtOnce(t *testing.T) {
	w := newWorld(t)
	calls, release := holdCalls(w.env.Sim.EC2Handler(), "CreateNetworkInterface", func(q url.Values) bool {
		return q.Get("Description") == awsutils.BranchDescription
	})
	h := newHarness(t, serveEC2(t, w, calls, release), fastConfig())
	const node = "rc-podbranches"
	h.addSGPNode(node, inst1, 9)
	h.createPodAsking("three", node, 3)
	waitFor(t, 8*time.Second, "the pod's three branch creates at EC2 at once", func() (bool, string) {
		n := calls.parked.Load()
		return n >= 3, fmt.Sprint(n)
	})
	release()
	got := h.waitAnnotation("three")
	waitFor(t, 30*time.Second, "three branches, each associated on its VLAN", func() (bool, string) {
		as, err := w.ec2.TrunkAssociations(context.Background(), w.trunks()[0].ID)
		if err != nil {
			return false, err.Error()
		}
		ok := len(got) == 3 && len(as) == 3 && len(w.branches()) == 3
		for _, b := range got {
			ok = ok && slices.ContainsFunc(as, func(a awsutils.TrunkAssociation) bool { return a.BranchID == b.ENIID && a.VLAN == b.VlanID })
		}
		return ok, fmt.Sprintf("annotation %+v associations %+v", got, as)
	})
}

// TestKubePodBranchFailureRollsBackTheOthers: EC2 refuses one of a pod's
// three branch creates. The branches made for it meanwhile must be deleted
// and their VLANs freed: the pod's retry gets its three, no other branch
// is left in EC2, and a pod asking for the node's other six branches gets
// them (a VLAN or slot kept by the failed try would leave it at capacity).
func TestKubePodBranchFailureRollsBackTheOthers(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	const node = "rc-podbranchfail"
	h.addSGPNode(node, inst1, 9)
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{
		{Action: "CreateNetworkInterface", Code: "InvalidParameterValue", Count: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	h.createPodAsking("three", node, 3)
	h.waitEvent("three", ReasonBranchAllocationFailed, "InvalidParameterValue")
	three := h.waitAnnotation("three")
	waitFor(t, 30*time.Second, "only the pod's three branches left in EC2", func() (bool, string) {
		ids := branchIDs(w.branches())
		ok := len(three) == 3 && len(ids) == 3
		for _, b := range three {
			ok = ok && slices.Contains(ids, b.ENIID)
		}
		return ok, fmt.Sprintf("branches %v annotation %+v", ids, three)
	})
	h.createPodAsking("six", node, 6)
	if six := h.waitAnnotation("six"); len(six) != 6 {
		t.Fatalf("pod asking for 6 got %+v", six)
	}
}
