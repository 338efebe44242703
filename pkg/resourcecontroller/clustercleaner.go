package resourcecontroller

import (
	"context"
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// The cluster cleaner deletes the ENIs this cluster's controller or ipamd
// left available in the VPC: a crash between create and associate or
// attach, a failed delete whose in-memory retry was lost with a restart
// (docs/compatibility.md, "Security groups for pods"). An ENI is deleted
// only if the previous pass, ClusterCleanInterval earlier, saw it
// available too: ipamd creates an ENI and then attaches it, and one caught
// in between is in use by the next pass.

// leakPlan is one cluster cleaner pass's decision.
type leakPlan struct {
	// seen are this pass's available ENIs of the cluster, for the next.
	seen map[string]bool
	// leaked were available in the previous pass too: delete them.
	leaked []string
	// byOwner counts seen by eks:eni:owner.
	byOwner map[string]int
}

// clusterTagged: the CNI's cluster tag or the controller's owned tag names
// cluster.
func clusterTagged(tags map[string]string, cluster string) bool {
	return tags[awsutils.TagClusterName] == cluster || tags[awsutils.TagClusterOwnedPrefix+cluster] == "owned"
}

// planLeaked decides a pass from the previous pass's seen set and the
// available owned ENIs found now (the describe matches tag keys, so
// another cluster's ENIs may be among them).
func planLeaked(prev map[string]bool, found []awsutils.ENI, cluster string) leakPlan {
	p := leakPlan{seen: map[string]bool{}, byOwner: map[string]int{}}
	for _, e := range found {
		if e.Status != "available" || !clusterTagged(e.Tags, cluster) {
			continue
		}
		p.seen[e.ID] = true
		p.byOwner[e.Tags[awsutils.TagENIOwner]]++
		if prev[e.ID] {
			p.leaked = append(p.leaked, e.ID)
		}
	}
	return p
}

// Each leaked ENI is deleted in a job of its own, cleanerDeletes at once.
// A pass deleted them in turn and the next pass waited for it: one delete
// EC2 was slow to answer (up to its client's timeout per attempt) held
// every other leaked ENI, each holding an address of its subnet. An ENI
// whose delete still runs, or that finds no free slot, is left to a later
// pass; a failed delete leaves it available, so a later pass finds it
// again.

// cleanerDeletes bounds the cluster cleaner's deletes running at once:
// their calls share the EC2 client's rate limit.
const cleanerDeletes = 10

// runClusterCleaner runs a pass at start and every ClusterCleanInterval.
func (c *Controller) runClusterCleaner(ctx context.Context) error {
	if c.cfg.VPCID == "" {
		c.cfg.Log.Warn("no VPC id configured: leaked ENIs of the cluster are not cleaned up")
		return nil
	}
	t := time.NewTicker(c.cfg.ClusterCleanInterval)
	defer t.Stop()
	var jobs sync.WaitGroup
	defer jobs.Wait() // their deletes end with ctx
	var seen map[string]bool
	for {
		seen = c.startCleanCluster(ctx, seen, &jobs)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// cleanCluster runs one pass and returns once its deletes are done.
func (c *Controller) cleanCluster(ctx context.Context, prev map[string]bool) map[string]bool {
	var jobs sync.WaitGroup
	seen := c.startCleanCluster(ctx, prev, &jobs)
	jobs.Wait()
	return seen
}

// startCleanCluster runs one pass: one paged describe, then a delete job
// for each leaked ENI without one running, as slots allow; jobs counts
// them. It returns the seen set for the next pass (prev again when the
// describe failed, so a failed pass does not restart the count).
func (c *Controller) startCleanCluster(ctx context.Context, prev map[string]bool, jobs *sync.WaitGroup) map[string]bool {
	found, err := c.ec2.OwnedENIs(ctx, awsutils.OwnedENIsQuery{
		VPCID: c.cfg.VPCID, Available: true,
		AnyTagKey: []string{awsutils.TagClusterName, awsutils.TagClusterOwnedPrefix + c.cfg.ClusterName},
	})
	if err != nil {
		c.cfg.Log.Warn("cluster cleaner: listing available ENIs", "vpc", c.cfg.VPCID, "err", err)
		return prev
	}
	p := planLeaked(prev, found, c.cfg.ClusterName)
	metricRCAvailableENIs.Set(float64(p.byOwner[awsutils.ENIOwnerController]))
	metricCNIAvailableENIs.Set(float64(p.byOwner[awsutils.ENIOwnerCNI]))
	metricLeakedENIs.Set(float64(len(p.leaked)))
	for _, id := range p.leaked {
		if ctx.Err() != nil {
			break // stopping: a warning per ENI left would say nothing more
		}
		// Not started when running, or every slot is taken: a later pass.
		startJob(ctx, c.cleanJobs, id, jobs, func(ctx context.Context) { c.deleteLeaked(ctx, id) })
	}
	return p.seen
}

// deleteLeaked deletes a leaked ENI; a failure is left to a later pass.
func (c *Controller) deleteLeaked(ctx context.Context, id string) {
	if err := c.ec2.DeleteENI(ctx, id); err != nil {
		c.cfg.Log.Warn("cluster cleaner: deleting a leaked ENI; retrying at a later pass", "eni", id, "err", err)
		return
	}
	c.cfg.Log.Info("cluster cleaner: deleted an ENI available for two passes", "eni", id)
}
