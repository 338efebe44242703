package resourcecontroller

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestKubeHungLooseDeletesDoNotStarveNodes: EC2 holds the retried deletes
// of more gone nodes' branches than the GC has slots. A leaked branch on a
// live node's trunk must still be deleted within a few GC passes. Before,
// each pass started the loose deletes first and they took every slot: no
// node was collected while EC2 held them (30 s a try here, and the failed
// ones took the slots again at the next pass).
func TestKubeHungLooseDeletesDoNotStarveNodes(t *testing.T) {
	w := newWorld(t)
	var mu sync.Mutex
	held := map[string]bool{}
	calls, release := holdCalls(w.env.Sim.EC2Handler(), "DeleteNetworkInterface", func(q url.Values) bool {
		mu.Lock()
		defer mu.Unlock()
		return held[q.Get("NetworkInterfaceId")]
	})
	cfg := fastConfig()
	cfg.ClusterCleanInterval = time.Hour // the cluster cleaner's second pass must not delete the loose ones
	h := newHarness(t, serveEC2(t, w, calls, release), cfg)
	const node = "rc-loosestarve"
	h.addSGPNode(node, inst2, 9)
	// Plain ENIs of an instance no node names, not branches: the start-up
	// sweep of lost branches leaves them to the retries.
	var loose []BranchENI
	for range gcJobSlots + 2 {
		e, err := w.ec2.CreateENI(context.Background(), awsutils.CreateENIRequest{InstanceID: inst3, SubnetID: simtest.NodeSubnetID})
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		held[e.ID] = true
		mu.Unlock()
		loose = append(loose, BranchENI{ENIID: e.ID})
	}
	h.ctrl.reg.addLoose(loose)
	waitFor(t, 30*time.Second, "the loose deletes held at EC2", func() (bool, string) {
		n := calls.parked.Load()
		return n >= 1, fmt.Sprint(n)
	})
	b := w.leakBranch(t, inst2)
	// GC passes are 200 ms apart; EC2's client gives up a held call after 30 s.
	waitFor(t, 10*time.Second, "the live node's leaked branch deleted while the loose deletes are held", func() (bool, string) {
		left := existing(w, []string{b})
		return len(left) == 0, fmt.Sprint(left)
	})
	release()
	ids := make([]string, len(loose))
	for i, l := range loose {
		ids[i] = l.ENIID
	}
	waitFor(t, 60*time.Second, "the loose branches deleted once EC2 answers", func() (bool, string) {
		left := existing(w, ids)
		return len(left) == 0, fmt.Sprint(left)
	})
}
