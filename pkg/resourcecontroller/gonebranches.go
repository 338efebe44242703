package resourcecontroller

import (
	"context"
	"errors"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

// A gone node's branches are deleted in the background, not in the Node
// reconcile (and so are those of a node that lost SGP, unmanage.go): each delete is an EC2 call or two (seconds each when EC2 is
// slow or throttled), and a node holds up to 120 branches, so a few gone
// nodes held every Node worker and a live node's reconcile (a new node's
// trunk, hence its pods' branches) waited behind them. The jobs take the
// node cleaner's slots (Config.NodeCleanWorkers, --max-node-reconcile):
// at most that many gone nodes are worked on at once, one job per node.
// While a node's job runs, the node's own reconciles wait for it (they
// ran after it when it was in the worker): a Node back meanwhile has its
// trunk rebuilt from what EC2 holds once the deletes stopped.

// goneJobs names the nodes whose branch deletion runs.
type goneJobs struct {
	mu sync.Mutex
	m  map[string]goneJob
}

// goneJob is a running job: the instance whose branches it deletes, and
// how to cut it short.
type goneJob struct {
	instanceID string
	cut        context.CancelCauseFunc
}

// errNameTaken cuts a gone node's job short: another instance registered
// the name.
var errNameTaken = errors.New("node name registered again by another instance")

func newGoneJobs() *goneJobs { return &goneJobs{m: map[string]goneJob{}} }

func (g *goneJobs) start(node string, j goneJob) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.m[node] = j
}

func (g *goneJobs) end(node string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.m, node)
}

func (g *goneJobs) running(node string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.m[node]
	return ok
}

// cutFor cuts short the job of node when it deletes the branches of an
// instance other than instanceID (a known one), and reports whether it
// did: that instance's branches are not the node's now, and its delete
// in flight (as long as EC2 takes) must not hold the new instance's trunk.
func (g *goneJobs) cutFor(node, instanceID string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	j, ok := g.m[node]
	if !ok || j.cut == nil || instanceID == "" || j.instanceID == instanceID {
		return false
	}
	j.cut(errNameTaken)
	return true
}

// startGoneBranches drops the trunk state at of a gone node and deletes
// its branches in the background, once a cleaner slot is free for it;
// wait is true when none is (every slot taken, or a job of the node's
// still runs): the state stays and the node is looked at again later.
// At the job's end the node's cleanup starts (nodecleaner.go) and the
// node is reconciled again.
func (c *Controller) startGoneBranches(ctx context.Context, at trunkAt) (wait bool) {
	name := at.node
	return c.startTrunkJob(ctx, at, func(jctx context.Context, t *trunk) {
		instanceID := t.instanceID
		reused := false
		left, _ := c.deleteTrunkBranchesUnless(jctx, t, func() bool {
			if jctx.Err() != nil {
				return true
			}
			var stop bool
			stop, reused = c.backFor(jctx, name, instanceID)
			return stop
		}, nil)
		// Cut short by the new instance's reconcile (reconcileNode): the
		// delete in flight was given up, and is among left.
		reused = reused || context.Cause(jctx) == errNameTaken
		if reused {
			// Another instance registered the name: its CNINode waits for
			// the old one's cleanup, so the old branches go to the
			// background deletes, which that cleanup leaves alone
			// (droppedbranches.go).
			if n := c.startBranchDeletes(ctx, name, left); n > 0 {
				c.cfg.Log.Info("node name registered again by another instance; its old branch ENIs are deleted in the background",
					"node", name, "instance", instanceID, "count", n)
			}
		}
	}, func() {
		// The node's cleanup starts here, as it did right after the
		// deletes in the reconcile: a Node back without a providerID is
		// not reconciled as gone, and its cleanup is what waits for it.
		if _, err := c.cleanGoneNode(ctx, name); err != nil {
			c.cfg.Log.Warn("starting the cleanup of a deleted node", "node", name, "err", err)
		}
	})
}

// startTrunkJob drops the trunk state at and runs work on it in the
// background in a cleaner slot, then after (if not nil) once the slot is
// free, then reconciles the node again; wait: no slot is free for the
// node yet, nothing was done. While the job runs the node's reconciles
// wait for it (reconcileNode); the job's context (work's) is cancelled
// with errNameTaken when another instance registers the name
// (goneJobs.cutFor).
func (c *Controller) startTrunkJob(ctx context.Context, at trunkAt, work func(context.Context, *trunk), after func()) (wait bool) {
	name := at.node
	if started, _ := c.cleaner.start(name); !started {
		return true
	}
	t := c.reg.dropAt(at)
	if t == nil {
		c.cleaner.done(name) // dropped or replaced meanwhile
		return false
	}
	// ctx is the controller's: it outlives this reconcile (no
	// ReconciliationTimeout is set) and ends with the manager.
	jctx, cancel := context.WithCancelCause(ctx)
	c.gone.start(name, goneJob{instanceID: t.instanceID, cut: cancel})
	go func() {
		defer cancel(nil)
		work(jctx, t)
		c.gone.end(name)
		c.cleaner.done(name)
		if after != nil {
			after()
		}
		c.kickNode(ctx, name) // also retries what after did not start
	}()
	return false
}

// kickNode asks the node controller to reconcile node.
func (c *Controller) kickNode(ctx context.Context, node string) {
	select {
	case c.kick <- event.GenericEvent{Object: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}}:
	case <-ctx.Done():
	}
}
