package resourcecontroller

import (
	"context"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// checkTrunk runs after a branch failed with NotFound: if the node's
// trunk ENI is gone from EC2 (deleted outside the controller), its state
// is dropped and the node reconciled, which makes a new trunk. Kept, every
// new pod of the node would fail to associate for as long as it lives.
// One describe, only on that error; a NotFound about the new branch
// itself (EC2's eventual consistency) finds the trunk and changes nothing.
func (c *Controller) checkTrunk(ctx context.Context, info TrunkInfo) {
	_, vanished, err := c.ec2.DescribeENIs(ctx, []string{info.TrunkID})
	if err != nil {
		c.cfg.Log.Warn("checking whether the node's trunk ENI still exists", "node", info.Node, "trunk", info.TrunkID, "err", err)
		return
	}
	if !slices.Contains(vanished, info.TrunkID) {
		return
	}
	t := c.reg.dropAt(info.at())
	if t == nil {
		return // already dropped or replaced
	}
	c.cfg.Log.Warn("the node's trunk ENI is gone from EC2; dropping its state and making a new trunk", "node", info.Node, "trunk", info.TrunkID)
	c.startBranchDeletes(ctx, info.Node, trunkBranches(t)) // not in this pod's worker
	ev := event.GenericEvent{Object: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: info.Node}}}
	select {
	case c.kick <- ev:
	case <-ctx.Done():
	}
}
