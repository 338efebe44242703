package resourcecontroller

import (
	"context"
	"sync"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// A trunk state dropped while its node stays (its trunk ENI gone from
// EC2, trunkgone.go; its name now another instance's, nodes.go) has its
// branches deleted in the background, as a gone node's are
// (gonebranches.go). They were deleted in the worker that dropped the
// state, one EC2 delete (seconds when EC2 is slow) per branch, and the
// node's new trunk, hence its new pods' branches, waited for all of them.
// A job takes a node cleaner slot, waiting for one; a failed delete is
// retried at each GC pass (deleteLoose). The ids are only in memory: after
// a restart the instance's trunk init finds its branches of another trunk
// again (sweepOldTrunkBranches), and an old instance's, whose CNINode's
// cleanup leaves them to the job, are swept at start (lostbranches.go).

// branchDeletes names the branch ENIs background jobs are deleting, so a
// sweep does not start a second delete of one.
type branchDeletes struct {
	mu  sync.Mutex
	ids map[string]bool
}

func newBranchDeletes() *branchDeletes { return &branchDeletes{ids: map[string]bool{}} }

// claim marks the branches of bs no job deletes yet and returns them.
func (d *branchDeletes) claim(bs []BranchENI) []BranchENI {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []BranchENI
	for _, b := range bs {
		if !d.ids[b.ENIID] {
			d.ids[b.ENIID] = true
			out = append(out, b)
		}
	}
	return out
}

// has reports whether a job deletes the ENI id.
func (d *branchDeletes) has(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ids[id]
}

func (d *branchDeletes) release(bs []BranchENI) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range bs {
		delete(d.ids, b.ENIID)
	}
}

// trunkBranches lists every branch a dropped trunk state knows: its pods',
// those cooling down and those its delete queue gave up on.
func trunkBranches(t *trunk) []BranchENI {
	var all []BranchENI
	for _, bs := range t.pods {
		for _, b := range bs {
			all = append(all, b.BranchENI)
		}
	}
	for _, b := range t.cooling {
		all = append(all, b.BranchENI)
	}
	for id, vlan := range t.abandoned {
		all = append(all, BranchENI{ENIID: id, VlanID: vlan})
	}
	return all
}

// startBranchDeletes deletes bs, branches of node no trunk state holds
// any more, in the background and returns at once how many it took (those
// no job deletes yet).
func (c *Controller) startBranchDeletes(ctx context.Context, node string, bs []BranchENI) int {
	return c.startBranchDeletesEach(ctx, node, bs, nil)
}

// startBranchDeletesEach is startBranchDeletes calling track, if not nil,
// with the branches taken before any delete, and the hook it returns after
// each of their deletes (err nil: deleted).
func (c *Controller) startBranchDeletesEach(ctx context.Context, node string, bs []BranchENI, track func(taken []BranchENI) func(BranchENI, error)) int {
	bs = c.deleting.claim(bs)
	if len(bs) == 0 {
		return 0
	}
	each := func(BranchENI, error) {}
	if track != nil {
		each = track(bs)
	}
	// Node names have no '/': the key is no node's cleanup slot.
	key := node + "/" + bs[0].ENIID
	// ctx is the controller's: it outlives the reconcile that dropped
	// the state and ends with the manager.
	go func() {
		defer c.deleting.release(bs)
		if !c.cleaner.wait(ctx, key) {
			return // stopping: found again at the next trunk init
		}
		defer c.cleaner.done(key)
		var failed []BranchENI
		for _, b := range bs {
			err := c.deleteBranch(ctx, b)
			if err != nil {
				c.cfg.Log.Warn("deleting a branch ENI of a dropped trunk; retrying at the next GC pass", "node", node, "eni", b.ENIID, "err", err)
				failed = append(failed, b)
			} else {
				c.cfg.Log.Info("deleted a branch ENI of a dropped trunk", "node", node, "eni", b.ENIID)
			}
			each(b, err)
		}
		c.reg.addLoose(failed)
	}()
	return len(bs)
}

// oldTrunkBranches picks, of the branch ENIs tagged with an instance whose
// trunk is trunkID, those of another trunk no node's state holds: that
// trunk is gone (an instance has one), and so are their pods' networks.
func oldTrunkBranches(found []awsutils.ENI, trunkID string, held func(string) bool) []BranchENI {
	var out []BranchENI
	for _, e := range found {
		tr, ok := e.Tags[awsutils.TagTrunkENIID]
		if !ok || tr == trunkID || held(tr) {
			continue
		}
		out = append(out, BranchENI{ENIID: e.ID})
	}
	return out
}

// sweepOldTrunkBranches starts the deletion of the instance's branches of
// a trunk it no longer has, of the branches its trunk init found
// (initTrunk: the same describe serves the trunk's rebuild).
func (c *Controller) sweepOldTrunkBranches(ctx context.Context, node, instanceID, trunkID string, found []awsutils.ENI) {
	if n := c.startBranchDeletes(ctx, node, oldTrunkBranches(found, trunkID, c.reg.trunkHeld)); n > 0 {
		c.cfg.Log.Info("deleting the branch ENIs of the instance's earlier trunk", "node", node, "instance", instanceID, "trunk", trunkID, "count", n)
	}
}

// onTrunk picks, of the branch ENIs found, those tagged with trunkID.
func onTrunk(found []awsutils.ENI, trunkID string) []awsutils.ENI {
	var out []awsutils.ENI
	for _, e := range found {
		if e.Tags[awsutils.TagTrunkENIID] == trunkID {
			out = append(out, e)
		}
	}
	return out
}
