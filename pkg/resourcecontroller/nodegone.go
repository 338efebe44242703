package resourcecontroller

import (
	"context"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// A deleted Node keeps its trunk state for DeinitDelay, as on EKS: its
// pods' deletions (evictions) arrive first and release their branches
// through the cool-down, and a Node registered again for the same instance
// meanwhile (kubectl delete node on a live instance: the kubelet
// registers it again) keeps its trunk and its running pods' branches. The
// state takes no new pod meanwhile. Then every branch it still holds is
// deleted, the state dropped, and the node-termination cleaner runs
// (nodecleaner.go); the CNINode's finalizer holds until both are done, so
// a restart in between does the work again from EC2.

// nodeGone handles a Node that is not found.
func (c *Controller) nodeGone(ctx context.Context, name string) (reconcile.Result, error) {
	at, held := c.reg.setGone(name, true)
	now := time.Now()
	if !c.deinitOver.is(name, "over") {
		if wait := c.unmanaging.first(at, now).Add(c.cfg.DeinitDelay).Sub(now); wait > 0 {
			return reconcile.Result{RequeueAfter: wait}, nil
		}
	}
	// Over for this node until it is back or its CNINode gone: a
	// cleanup looked at again (every slot taken, a failure retried) does
	// not wait the delay again.
	c.deinitOver.first(name, "over")
	c.unmanaging.clear(name)
	if held {
		// Deleted in the background (gonebranches.go), whose end brings
		// the node back here for its cleanup.
		if wait := c.startGoneBranches(ctx, at); wait {
			return reconcile.Result{RequeueAfter: nodeCleanBusyDelay}, nil
		}
		return reconcile.Result{}, nil
	}
	if c.gone.running(name) {
		return reconcile.Result{}, nil // its end brings the node back here
	}
	// Its cleanup checks before each delete that no Node of the name is
	// back for the instance its CNINode names.
	return c.cleanGoneNode(ctx, name)
}

// backFor is nodeNow for a stop function: stop when the Node is back for
// the instance, or taken by another instance, or when the read failed, so
// nothing is deleted on a guess (the trunk rebuild or the node's cleanup
// deletes it later); taken only when it was read.
func (c *Controller) backFor(ctx context.Context, name, instanceID string) (stop, taken bool) {
	back, taken, err := c.nodeNow(ctx, name, instanceID)
	if err != nil {
		c.cfg.Log.Warn("reading a deleted node before deleting its branch ENIs; leaving them", "node", name, "err", err)
		return true, false
	}
	if back {
		c.cfg.Log.Info("deleted node registered again for its instance; leaving its branch ENIs", "node", name, "instance", instanceID)
	}
	return back || taken, taken
}
