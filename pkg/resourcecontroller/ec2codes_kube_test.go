package resourcecontroller

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// eventsOf lists the messages of the events of reason on the object name
// of kind in namespace made since the harness was.
func (h *harness) eventsOf(namespace, kind, name, reason string) []string {
	h.t.Helper()
	var l corev1.EventList
	if err := h.admin.List(context.Background(), &l, client.InNamespace(namespace)); err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range l.Items {
		if e.InvolvedObject.Kind == kind && e.InvolvedObject.Name == name && e.Reason == reason && h.ours(e) {
			out = append(out, e.Message)
		}
	}
	return out
}

// TestKubeBranchEC2CodesNamedAndRetried: EC2 refuses a pod's branch
// (CreateNetworkInterface) three times, with two codes. The pod's
// BranchAllocationFailed events name each code, the pod is retried and
// served once EC2 accepts, and it is told its security groups
// (SecurityGroupRequested) once, not once per retry.
func TestKubeBranchEC2CodesNamedAndRetried(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	h.addSGPNode("rc-codes", inst1, 9)
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{
		{Action: "CreateNetworkInterface", Code: "InsufficientFreeAddressesInSubnet", Count: 2},
		{Action: "CreateNetworkInterface", Code: "SecurityGroupsPerInterfaceLimitExceeded", Count: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.createPod("p", "rc-codes", map[string]string{"role": "db-client"}); err != nil {
		t.Fatal(err)
	}
	h.waitAnnotation("p")
	h.waitEvent("p", ReasonResourceAllocated, "eni-")
	if n := w.env.Sim.Stats().Errors["CreateNetworkInterface"]; n["InsufficientFreeAddressesInSubnet"] != 2 || n["SecurityGroupsPerInterfaceLimitExceeded"] != 1 {
		t.Fatalf("EC2 refused %v, want the 3 injected refusals", n)
	}
	failed := h.eventsOf(h.ns, "Pod", "p", ReasonBranchAllocationFailed)
	for _, code := range []string{"InsufficientFreeAddressesInSubnet", "SecurityGroupsPerInterfaceLimitExceeded"} {
		if !strings.Contains(strings.Join(failed, "\n"), code) {
			t.Errorf("%s events %q do not name %s", ReasonBranchAllocationFailed, failed, code)
		}
	}
	if sg := h.eventsOf(h.ns, "Pod", "p", ReasonSecurityGroupRequested); len(sg) != 1 || !strings.Contains(sg[0], sgDB) {
		t.Fatalf("%s events %q, want one naming %s", ReasonSecurityGroupRequested, sg, sgDB)
	}
}

// TestKubeTrunkEC2CodesNamedAndRetried: EC2 refuses a node's trunk ENI
// (CreateNetworkInterface) five times, with two codes. The node's
// TrunkENICreationFailed events name each code once, NodeTrunkFailedInit
// comes once per code, not once per retry, and the trunk is made once EC2
// accepts.
func TestKubeTrunkEC2CodesNamedAndRetried(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{
		{Action: "CreateNetworkInterface", Code: "InsufficientFreeAddressesInSubnet", Count: 3},
		{Action: "CreateNetworkInterface", Code: "UnauthorizedOperation", Count: 2},
	}}); err != nil {
		t.Fatal(err)
	}
	h.addSGPNode("rc-trunk-codes", inst1, 9)
	if n := w.env.Sim.Stats().Errors["CreateNetworkInterface"]; n["InsufficientFreeAddressesInSubnet"] != 3 || n["UnauthorizedOperation"] != 2 {
		t.Fatalf("EC2 refused %v, want the 5 injected refusals", n)
	}
	if tr := w.trunks(); len(tr) != 1 {
		t.Fatalf("%d trunks, want 1", len(tr))
	}
	h.waitNodeEvents("rc-trunk-codes", ReasonNodeTrunkInitiated, 1)
	created := h.eventsOf(metav1.NamespaceDefault, "Node", "rc-trunk-codes", ReasonTrunkCreationFailed)
	want := []string{"InsufficientFreeAddressesInSubnet", "UnauthorizedOperation"}
	if len(created) != len(want) {
		t.Fatalf("%s events %q, want one per code %v", ReasonTrunkCreationFailed, created, want)
	}
	for _, code := range want {
		if n := countContaining(created, "Error Code: "+code); n != 1 {
			t.Errorf("%s events %q: %d name %s, want 1", ReasonTrunkCreationFailed, created, n, code)
		}
	}
	if failed := h.eventsOf(metav1.NamespaceDefault, "Node", "rc-trunk-codes", ReasonNodeTrunkFailedInit); len(failed) != len(want) {
		t.Fatalf("%s events %q, want one per code", ReasonNodeTrunkFailedInit, failed)
	}
}

// TestKubeTrunkAlternatingEC2CodesToldOnce: two causes taking turns
// (A, B, A, B, A, B: an IAM refusal and a full subnet) tell each code once,
// not once per switch. Before, only the last code was remembered and each
// of the six refusals sent both events.
func TestKubeTrunkAlternatingEC2CodesToldOnce(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	var rules []vpcsim.ErrorRule
	for range 3 {
		rules = append(rules,
			vpcsim.ErrorRule{Action: "CreateNetworkInterface", Code: "UnauthorizedOperation", Count: 1},
			vpcsim.ErrorRule{Action: "CreateNetworkInterface", Code: "InsufficientFreeAddressesInSubnet", Count: 1})
	}
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: rules}); err != nil {
		t.Fatal(err)
	}
	const node = "rc-trunk-alternating"
	h.addSGPNode(node, inst1, 9)
	if n := w.env.Sim.Stats().Errors["CreateNetworkInterface"]; n["UnauthorizedOperation"] != 3 || n["InsufficientFreeAddressesInSubnet"] != 3 {
		t.Fatalf("EC2 refused %v, want the 6 injected refusals", n)
	}
	h.waitNodeEvents(node, ReasonNodeTrunkInitiated, 1)
	created := h.eventsOf(metav1.NamespaceDefault, "Node", node, ReasonTrunkCreationFailed)
	for _, code := range []string{"UnauthorizedOperation", "InsufficientFreeAddressesInSubnet"} {
		if n := countContaining(created, "Error Code: "+code); n != 1 {
			t.Errorf("%s events %q: %d name %s, want 1", ReasonTrunkCreationFailed, created, n, code)
		}
	}
}

func countContaining(msgs []string, substr string) int {
	n := 0
	for _, m := range msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

// TestKubeTrunkInitFailureBeforeCreateTold: EC2 refuses the describe of
// the node's instance twice (an IAM policy lacking DescribeInstances)
// before any trunk create. The node is told, once, with EC2's code, and
// gets its trunk once EC2 answers. Before, such failures were only logged.
func TestKubeTrunkInitFailureBeforeCreateTold(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{
		{Action: "DescribeInstances", Code: "UnauthorizedOperation", Count: 2},
	}}); err != nil {
		t.Fatal(err)
	}
	const node = "rc-trunk-describe"
	h.addSGPNode(node, inst1, 9)
	if n := w.env.Sim.Stats().Errors["DescribeInstances"]["UnauthorizedOperation"]; n != 2 {
		t.Fatalf("EC2 refused %d describes, want the 2 injected", n)
	}
	h.waitNodeEvents(node, ReasonNodeTrunkInitiated, 1)
	created := h.eventsOf(metav1.NamespaceDefault, "Node", node, ReasonTrunkCreationFailed)
	if len(created) != 1 || !strings.Contains(created[0], "Error Code: UnauthorizedOperation") {
		t.Fatalf("%s events %q, want one naming UnauthorizedOperation", ReasonTrunkCreationFailed, created)
	}
	if failed := h.eventsOf(metav1.NamespaceDefault, "Node", node, ReasonNodeTrunkFailedInit); len(failed) != 1 {
		t.Fatalf("%s events %q, want one", ReasonNodeTrunkFailedInit, failed)
	}
}
