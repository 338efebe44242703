package resourcecontroller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestKubeHungLooseDeleteDoesNotHoldOthers: the deletes of two gone
// nodes' branches failed and wait in memory for the GC to retry them
// (deleteLoose); EC2 holds the retry of the first. The second, failed
// later, must still be deleted within a few GC passes, and the held one
// once EC2 answers. Before, one GC job retried them all in turn and the
// next pass's waited for it: the held call (until EC2's client gave up,
// 30 s here) held every other gone node's branches.
func TestKubeHungLooseDeleteDoesNotHoldOthers(t *testing.T) {
	w := newWorld(t)
	calls, release, holdENI := holdDeletesOf(w.env.Sim.EC2Handler())
	cfg := fastConfig()
	cfg.ClusterCleanInterval = time.Hour // the cluster cleaner's second pass must not delete them
	h := newHarness(t, serveEC2(t, w, calls, release), cfg)
	// Plain ENIs of an instance no node names, not branches: the start-up
	// sweep of lost branches leaves them to the retries.
	// hold: EC2 holds its deletes, from before the GC knows it.
	failed := func(hold bool) string {
		e, err := w.ec2.CreateENI(context.Background(), awsutils.CreateENIRequest{InstanceID: inst3, SubnetID: simtest.NodeSubnetID})
		if err != nil {
			t.Fatal(err)
		}
		if hold {
			holdENI(e.ID)
		}
		h.ctrl.reg.addLoose([]BranchENI{{ENIID: e.ID}})
		return e.ID
	}
	a := failed(true)
	waitFor(t, 30*time.Second, "the retried delete of the first branch held at EC2", func() (bool, string) {
		n := calls.parked.Load()
		return n >= 1, fmt.Sprint(n)
	})
	b := failed(false)
	// GC passes are 200 ms apart; EC2's client gives up the held call after 30 s.
	waitFor(t, 10*time.Second, "the second branch deleted while the first's delete is held", func() (bool, string) {
		left := existing(w, []string{b})
		return len(left) == 0, fmt.Sprint(left)
	})
	release()
	waitFor(t, 60*time.Second, "the first branch deleted once EC2 answers", func() (bool, string) {
		left := existing(w, []string{a, b})
		return len(left) == 0, fmt.Sprint(left)
	})
}
