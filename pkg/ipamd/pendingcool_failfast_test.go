package ipamd

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
)

// TestFullNodeFailsFastBesideADroppedPendingAddress: a restored pod whose
// address is on no ENI of the node is dropped once the pending wait ends;
// its address cools, pending, in case EC2 hands it back. The node is then
// at its hard limit (MAX_ENI=1, 9 pods). An ADD fails at once naming the
// limit: that cooling address is on no ENI and can serve no pod when its
// cooldown ends. Before, the ADD waited for that cooldown (5 s here,
// IP_COOLDOWN_PERIOD's 30 s by default) and failed only then, and its
// error named a first available time at which nothing became available.
func TestFullNodeFailsFastBesideADroppedPendingAddress(t *testing.T) {
	const cooldown = 5 * time.Second
	h := newHarness(t, harnessOpts{noInit: true, cfg: func(c *config.Config) { c.MaxENI, c.IPCooldown = 1, cooldown }})
	gone := datastore.Allocation{Key: datastore.Key{NetworkName: "aws-cni", ContainerID: "gone", IfName: "eth0"},
		Addr: netip.MustParseAddr("10.0.15.200"), AssignedAt: time.Now().Add(-time.Hour),
		Meta: datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "gone"}}
	cp := datastore.NewFileCheckpointer(datastore.CheckpointPath(h.cfg.BackingStore, 0))
	if err := cp.Write(datastore.File{Version: datastore.CheckpointVersion, Allocations: []datastore.Allocation{gone}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	h.settle()
	done := make(chan struct{})
	go func() { defer close(done); h.n.pool.Run(ctx, time.Hour, 0, h.n.PoolCycle) }()
	t.Cleanup(func() { cancel(); <-done })
	for i := range 9 {
		if _, err := h.srv.AddNetwork(ctx, addReq(fmt.Sprint("full-", i))); err != nil {
			t.Fatalf("pod %d of 9: %v", i, err)
		}
	}
	h.n.restore.dropPending(ctx) // no host links here: the gone pod is dropped
	card := h.n.cards.all()[0].store
	if st := card.Stats(); st.Pending != 0 || len(card.PendingCooling()) != 1 {
		t.Fatalf("after the drop: %d pending, cooling pending %v; want the dropped address cooling", st.Pending, card.PendingCooling())
	}

	actx, acancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer acancel()
	oneTooMany(actx, t, h)
	h.checkConsistent()
}
