package resourcecontroller

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestKubeNodeBackDuringItsCleanup: an SGP Node is deleted and registered
// again for the same instance while the cleanup of its ENIs still reads
// them from EC2 (a slow DescribeNetworkInterfaces). The cleanup must not
// delete an available ENI of the instance, tagged as ipamd tags the ENI it
// has just made (the controller's new trunk between create and attach is
// alike): it is the live node's. Before, the cleanup deleted it, picked
// while the node was gone. (The branches of the gone node's pods are
// deleted when the Node is seen gone, by design: the pods go with it.)
func TestKubeNodeBackDuringItsCleanup(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	h.addNode("rc-back", inst1, nil)
	h.declareSGP("rc-back")
	h.waitCapacity("rc-back", 9)
	ctx := context.Background()
	fresh, err := w.ec2.CreateENI(ctx, awsutils.CreateENIRequest{InstanceID: inst1, SubnetID: simtest.NodeSubnetID})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{"DescribeNetworkInterfaces": vpcsim.Duration(3 * time.Second)}}); err != nil {
		t.Fatal(err)
	}
	if err := h.admin.Delete(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "rc-back"}}); err != nil {
		t.Fatal(err)
	}
	// What the garbage collector does for the Node's owned CNINode.
	if err := h.admin.Delete(ctx, &k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: "rc-back"}}); err != nil {
		t.Fatal(err)
	}
	cleaning := func() bool {
		h.ctrl.cleaner.mu.Lock()
		defer h.ctrl.cleaner.mu.Unlock()
		return h.ctrl.cleaner.running["rc-back"]
	}
	waitFor(t, 30*time.Second, "the deleted node's cleanup running", func() (bool, string) { return cleaning(), "" })
	h.addNode("rc-back", inst1, nil)
	waitFor(t, 60*time.Second, "the cleanup over", func() (bool, string) { return !cleaning(), "" })
	if err := w.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range w.env.Sim.NetworkInterfaces() {
		ids = append(ids, e.ID)
	}
	if !slices.Contains(ids, fresh.ID) {
		t.Errorf("the ENI ipamd made (%s) was deleted though its node is back (ENIs now %s)", fresh.ID, fmt.Sprint(ids))
	}
}
