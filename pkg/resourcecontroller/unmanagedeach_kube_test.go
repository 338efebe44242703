package resourcecontroller

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// TestKubeUnmanagedPodToldWhenItsOwnDeleteIsDone: a node with two branch
// pods loses SGP, while the controller runs (its trunk state known) and
// while it is down (its branches found in EC2 at the restart). EC2 takes
// the first branch delete and holds the other. The pod whose branch was
// deleted must be told so while the other delete is still held, and the
// other pod once EC2 answers. Before, every pod was told only at the end
// of the node's deletes.
func TestKubeUnmanagedPodToldWhenItsOwnDeleteIsDone(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart bool
	}{{"running", false}, {"restarted", true}} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ec2, released := heldAfterFirst(t, w)
			h := newHarness(t, ec2, fastConfig())
			h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
			node := "rc-unmanage-each-" + tc.name
			h.addSGPNode(node, inst1, 9)
			pods := []string{"a", "b"}
			branch := map[string]string{}
			for _, p := range pods {
				if _, err := h.createPod(p, node, map[string]string{"role": "db-client"}); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range pods {
				branch[p] = h.waitAnnotation(p)[0].ENIID
			}
			if tc.restart {
				h.stop()
				h.dropSGPFeature(node)
				startController(t, h)
			} else {
				h.dropSGPFeature(node)
			}
			var told string
			waitFor(t, 30*time.Second, "a pod told its branch was deleted while the other's delete is held", func() (bool, string) {
				ids := branchIDs(w.branches())
				for _, p := range pods {
					if !slices.Contains(ids, branch[p]) && h.hasEvent(p, ReasonBranchDeletedUnmanaged, "was deleted") {
						told = p
						return true, ""
					}
				}
				return false, fmt.Sprint("branches ", ids)
			})
			other := pods[0]
			if other == told {
				other = pods[1]
			}
			if ids := branchIDs(w.branches()); !slices.Contains(ids, branch[other]) {
				t.Fatalf("branches %v: pod %s's %s deleted while EC2 held its delete", ids, other, branch[other])
			}
			released()
			h.waitEvent(other, ReasonBranchDeletedUnmanaged, branch[other]+"] was deleted")
		})
	}
}
