package resourcecontroller

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// runGC finds leaks periodically: branches held for pods that no longer
// exist (their delete event was missed) and branches tagged with a trunk
// that nothing holds (a crash between create and annotate). The first
// pass, at start, also sweeps the branches of instances no node names
// (lostbranches.go), then each pass until that succeeds once, and again
// once a pod it spared a branch for has ended (sparedbranches.go).
func (c *Controller) runGC(ctx context.Context) error {
	t := time.NewTicker(c.cfg.GCInterval)
	defer t.Stop()
	var jobs sync.WaitGroup
	defer jobs.Wait() // their calls end with ctx
	var swept atomic.Bool
	for pass := 0; ; pass++ {
		if !swept.Load() || c.sparedPodEnded(ctx) {
			c.startGCJob(ctx, sweepJob, &jobs, func(ctx context.Context) {
				err := c.sweepLostBranches(ctx)
				swept.Store(err == nil)
				// Told once per cause: a Node that never gets a
				// providerID holds the sweep back for good. By the
				// cause's class (trunkcause.go), not its text: EC2's
				// names each request's id, a network error its
				// ephemeral port.
				if err != nil && ctx.Err() == nil && c.warned.first("sweep|", trunkCause(err)) {
					c.cfg.Log.Warn("sweeping the branch ENIs of instances no node names; retrying at each GC pass", "err", err)
				}
			})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		c.startGC(ctx, pass, &jobs)
	}
}

// The GC collects each node in a job of its own, gcJobSlots at once, one
// job per node, sweeps lost branches in one job, and retries the delete
// of each gone node's branch in a job of its own, looseJobSlots at once.
// It did all in turn: one describe or delete EC2 was slow to answer (up
// to its client's timeout per attempt) held the leak collection and VLAN
// reclaim of every other node, and the retries of every other gone node's
// branches. A node or loose branch whose job still runs, or that finds no
// free slot, waits for a later pass; a failed delete is found again by
// that pass's describe (loose ones are put back), a failed sweep runs
// again at the next pass.

// gcJobSlots bounds the node and sweep jobs running at once: their calls
// share the EC2 client's rate limit.
const gcJobSlots = 10

// looseJobSlots bounds the loose deletes' jobs running at once, in slots
// of their own: they took the shared ones first at each pass, and more
// gone nodes' branches than slots, held or refused by EC2, kept every
// live node uncollected and the sweep from running for as long.
const looseJobSlots = 5

// looseJob, followed by the branch's ENI id, keys the job retrying a gone
// node's branch delete (in looseJobs), and sweepJob the lost-branch
// sweep's (among the node jobs in gcJobs): no node name holds a "/".
const (
	looseJob = "/loose/"
	sweepJob = "/sweep"
)

// startGC starts, as slots allow, the loose deletes' jobs and a collect job
// for each node without one running. The nodes are gone through from a
// point that moves at each pass, so that slots held by hung nodes do not
// keep the same others waiting for good.
func (c *Controller) startGC(ctx context.Context, pass int, jobs *sync.WaitGroup) {
	c.startLooseDeletes(ctx, jobs)
	nodes := c.reg.nodes()
	for i := range nodes {
		node := nodes[(pass+i)%len(nodes)]
		c.startGCJob(ctx, node, jobs, func(ctx context.Context) {
			if err := c.collect(ctx, node); err != nil {
				c.cfg.Log.Warn("branch ENI garbage collection", "node", node, "err", err)
			}
		})
	}
}

// startGCJob runs job under key unless one runs already or every slot of
// the GC's is taken (the next pass); jobs counts it. It reports whether it
// started.
func (c *Controller) startGCJob(ctx context.Context, key string, jobs *sync.WaitGroup, job func(context.Context)) bool {
	return startJob(ctx, c.gcJobs, key, jobs, job)
}

// startJob runs job under key in one of pool's slots unless one runs
// already or every slot is taken; jobs counts it. It reports whether it
// started.
func startJob(ctx context.Context, pool *nodeCleaner, key string, jobs *sync.WaitGroup, job func(context.Context)) bool {
	if started, _ := pool.start(key); !started {
		return false
	}
	jobs.Add(1)
	go func() {
		defer jobs.Done()
		defer pool.done(key)
		job(ctx)
	}()
	return true
}

// startLooseDeletes retries, once a GC pass, the deletes of branches
// whose node is gone, each in a job of its own: nothing else knows them.
// One whose job runs still or that finds no free slot (of their own,
// looseJobSlots) is put back for the next pass.
func (c *Controller) startLooseDeletes(ctx context.Context, jobs *sync.WaitGroup) {
	var wait []BranchENI
	for _, b := range c.reg.takeLoose() {
		if !startJob(ctx, c.looseJobs, looseJob+b.ENIID, jobs, func(ctx context.Context) { c.deleteLoose(ctx, b) }) {
			wait = append(wait, b)
		}
	}
	c.reg.addLoose(wait)
}

// deleteLoose deletes a branch whose node is gone, putting it back for the
// next GC pass while EC2 refuses (a branch already gone answers NotFound:
// done).
func (c *Controller) deleteLoose(ctx context.Context, b BranchENI) {
	err := c.deleteBranch(ctx, b)
	countBranchOp(branchOpDeleteOrphan, err)
	if err != nil {
		c.cfg.Log.Warn("deleting a branch ENI of a deleted node; retrying at the next GC pass", "eni", b.ENIID, "err", err)
		c.reg.addLoose([]BranchENI{b})
		return
	}
	c.cfg.Log.Info("deleted a branch ENI of a deleted node", "eni", b.ENIID)
}

// collect runs one GC pass over a node.
func (c *Controller) collect(ctx context.Context, node string) error {
	var pods corev1.PodList
	if err := c.c.List(ctx, &pods, ctrl.MatchingFields{podNodeField: node}); err != nil {
		return err
	}
	live := map[types.UID]bool{}
	for i := range pods.Items {
		if !podDone(&pods.Items[i]) {
			live[pods.Items[i].UID] = true
		}
	}
	for _, ref := range c.reg.heldPods(node) {
		if !live[ref.uid] {
			c.cfg.Log.Info("releasing the branch ENIs of a pod that is gone", "node", node, "uid", ref.uid)
			metricBranchOK.WithLabelValues(branchOpLeaked).Inc()
			c.release(ref, string(ref.uid))
		}
	}
	info, ok := c.reg.info(node)
	if !ok {
		return nil
	}
	// Taken before the describe: a branch given up after it may be
	// missing from the answer without being gone.
	at, abandoned := c.reg.abandonedOf(node)
	found, err := c.ec2.BranchENIs(ctx, info.TrunkID)
	if err != nil {
		return err
	}
	for _, e := range found {
		vlan, _ := strconv.Atoi(e.Tags[awsutils.TagVLANID])
		if c.reg.known(node, e.ID, vlan) {
			delete(abandoned, e.ID)
			continue
		}
		c.cfg.Log.Info("deleting a leaked branch ENI", "node", node, "eni", e.ID, "vlan", vlan)
		err := c.ec2.DeleteENI(ctx, e.ID)
		countBranchOp(branchOpDeleteOrphan, err)
		if err != nil {
			c.cfg.Log.Warn("deleting a leaked branch ENI", "eni", e.ID, "err", err)
			delete(abandoned, e.ID)
		}
	}
	// What is left of the given-up branches is gone from EC2 now (deleted
	// here, or its earlier delete took effect): their VLANs are free.
	for id := range abandoned {
		c.reg.reclaim(at, id)
	}
	return nil
}
