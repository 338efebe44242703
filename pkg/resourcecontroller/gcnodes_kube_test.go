package resourcecontroller

import (
	"fmt"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// TestKubeHungGCDeleteDoesNotHoldOtherNodes: EC2 holds the delete of a
// leaked branch on one node's trunk. A leaked branch on another node's
// trunk must still be deleted within a few GC passes, and the held one
// once EC2 answers (a failed delete is retried at the next pass, not
// lost). Before, the GC collected node after node: the held call (until
// EC2's client gave up, 30 s here) held every other node's collection.
func TestKubeHungGCDeleteDoesNotHoldOtherNodes(t *testing.T) {
	testHungGCNode(t, "DeleteNetworkInterface", func(q url.Values, hungENI, _ string) bool {
		return q.Get("NetworkInterfaceId") == hungENI
	})
}

// TestKubeHungGCDescribeDoesNotHoldOtherNodes: as above, EC2 holding the
// GC's describe of one node's branches instead.
func TestKubeHungGCDescribeDoesNotHoldOtherNodes(t *testing.T) {
	testHungGCNode(t, "DescribeNetworkInterfaces", func(q url.Values, _, hungTrunk string) bool {
		for _, vs := range q {
			if hungTrunk != "" && slices.Contains(vs, hungTrunk) {
				return true
			}
		}
		return false
	})
}

// testHungGCNode runs the tests above: hold picks, of EC2's action calls,
// those to hold, given the ENI id of the first node's leaked branch and
// its trunk ("" until the hold is to start).
func testHungGCNode(t *testing.T, action string, hold func(q url.Values, hungENI, hungTrunk string) bool) {
	w := newWorld(t)
	var hungENI, hungTrunk atomic.Value
	hungENI.Store("")
	hungTrunk.Store("")
	calls, release := holdCalls(w.env.Sim.EC2Handler(), action, func(q url.Values) bool {
		return hold(q, hungENI.Load().(string), hungTrunk.Load().(string))
	})
	h := newHarness(t, serveEC2(t, w, calls, release), fastConfig())
	// Named so that the hung node comes first in the GC's order.
	const first, second = "rc-gchung-a", "rc-gchung-b"
	h.addSGPNode(first, inst1, 9)
	h.addSGPNode(second, inst2, 9)
	a := w.leakBranch(t, inst1)
	hungENI.Store(a)
	hungTrunk.Store(w.trunkOf(t, inst1))
	waitFor(t, 30*time.Second, "the first node's GC "+action+" held at EC2", func() (bool, string) {
		n := calls.parked.Load()
		return n >= 1, fmt.Sprint(n)
	})
	b := w.leakBranch(t, inst2)
	// GC passes are 200 ms apart; EC2's client gives up the held call after 30 s.
	waitFor(t, 10*time.Second, "the second node's leaked branch deleted while the first node's GC is held", func() (bool, string) {
		left := existing(w, []string{b})
		return len(left) == 0, fmt.Sprint(left)
	})
	release()
	waitFor(t, 60*time.Second, "the first node's leaked branch deleted once EC2 answers", func() (bool, string) {
		left := existing(w, []string{a, b})
		return len(left) == 0, fmt.Sprint(left)
	})
}

// TestKubeHungSweepDoesNotHoldGC: EC2 holds the describe of the start-up
// sweep of lost branches (lostbranches.go). A leaked branch on a node's
// trunk must still be deleted within a few GC passes. Before, the sweep
// ran in the GC loop itself: the held call (until EC2's client gave up,
// 30 s a try here, and the sweep is retried at each pass until it
// succeeds) held every node's collection.
func TestKubeHungSweepDoesNotHoldGC(t *testing.T) {
	w := newWorld(t)
	// The sweep's describe is the one asking for ENIs by the trunk tag's key.
	calls, release := holdCalls(w.env.Sim.EC2Handler(), "DescribeNetworkInterfaces", func(q url.Values) bool {
		for _, vs := range q {
			if slices.Contains(vs, awsutils.TagTrunkENIID) {
				return true
			}
		}
		return false
	})
	h := newHarness(t, serveEC2(t, w, calls, release), fastConfig())
	const node = "rc-sweephung"
	h.addSGPNode(node, inst2, 9)
	waitFor(t, 30*time.Second, "the sweep's describe held at EC2", func() (bool, string) {
		n := calls.parked.Load()
		return n >= 1, fmt.Sprint(n)
	})
	b := w.leakBranch(t, inst2)
	waitFor(t, 10*time.Second, "the node's leaked branch deleted while the sweep is held", func() (bool, string) {
		left := existing(w, []string{b})
		return len(left) == 0, fmt.Sprint(left)
	})
}
