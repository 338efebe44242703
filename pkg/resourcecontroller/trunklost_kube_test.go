package resourcecontroller

import (
	"fmt"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// TestKubeLostTrunkCreateLeavesNoAvailableTrunk: EC2 makes the trunk ENI
// but every answer to its create is lost (the SDK's retries carry the same
// client token, so there is one ENI), and the controller gives up. The
// node's next init must not leave that ENI available for ever: in the end
// the instance has exactly one trunk, attached to it.
func TestKubeLostTrunkCreateLeavesNoAvailableTrunk(t *testing.T) {
	w := newWorld(t)
	h := newHarness(t, w.ec2, fastConfig())
	if err := w.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{
		{Action: "CreateNetworkInterface", Code: "InternalError", Count: 3, After: true}, // applied, every attempt answered 500
	}}); err != nil {
		t.Fatal(err)
	}
	h.addSGPNode("rc-lost-trunk", inst1, 9)
	waitFor(t, 10*time.Second, "one trunk ENI, attached to the instance", func() (bool, string) {
		ts := w.trunks()
		var desc []string
		for _, e := range ts {
			desc = append(desc, fmt.Sprintf("%s %s %+v", e.ID, e.Status, e.Attachment))
		}
		return len(ts) == 1 && ts[0].Attachment != nil && ts[0].Attachment.InstanceID == inst1, fmt.Sprintf("trunks %v", desc)
	})
}
