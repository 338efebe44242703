package resourcecontroller

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestKubeHungCleanerDeleteDoesNotHoldOtherENIs: EC2 holds the cluster
// cleaner's delete of one leaked ENI. Another ENI leaked later must still
// be deleted within a few passes, and the held one once EC2 answers (a
// failed delete is retried at a later pass, not lost). Before, a pass
// deleted its leaked ENIs in turn and the next pass waited for it: the
// held call (until EC2's client gave up, 30 s here) held every other
// ENI's delete.
func TestKubeHungCleanerDeleteDoesNotHoldOtherENIs(t *testing.T) {
	w := newWorld(t)
	calls, release, holdENI := holdDeletesOf(w.env.Sim.EC2Handler())
	cfg := fastConfig()
	cfg.ClusterCleanInterval = 200 * time.Millisecond
	newHarness(t, serveEC2(t, w, calls, release), cfg)
	// An ENI ipamd created and lost before attaching it: available,
	// tagged with the cluster.
	leak := func() string {
		e, err := w.ec2.CreateENI(context.Background(), awsutils.CreateENIRequest{InstanceID: inst3, SubnetID: simtest.NodeSubnetID})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	a := leak()
	holdENI(a)
	waitFor(t, 30*time.Second, "the cluster cleaner's delete of the first ENI held at EC2", func() (bool, string) {
		n := calls.parked.Load()
		return n >= 1, fmt.Sprint(n)
	})
	b := leak()
	// Passes are 200 ms apart; EC2's client gives up the held call after 30 s.
	waitFor(t, 10*time.Second, "the second leaked ENI deleted while the first's delete is held", func() (bool, string) {
		left := existing(w, []string{b})
		return len(left) == 0, fmt.Sprint(left)
	})
	release()
	waitFor(t, 60*time.Second, "the first leaked ENI deleted once EC2 answers", func() (bool, string) {
		left := existing(w, []string{a, b})
		return len(left) == 0, fmt.Sprint(left)
	})
}
