package resourcecontroller

import (
	"context"
	"sync"
	"time"
)

// The cool-down loop deletes each node's cooled branches in a job of its
// own, coolDeleteNodes nodes at once, one job per node. It deleted every
// node's in turn: one delete EC2 was slow to answer (up to its client's
// timeout per attempt) held every other node's cooled branches, which
// count against their nodes' capacity, and the gone-but-kept branches
// queued there. A node whose job still runs is looked at again at the
// next tick; its branches wait in its queue, and a failed delete goes
// back to its front (registry.deleted).

// coolDeleteNodes bounds the nodes whose cooled branches are deleted at
// once: their calls share the EC2 client's rate limit.
const coolDeleteNodes = 10

// runCooldown deletes released branches once their cool-down is over.
func (c *Controller) runCooldown(ctx context.Context) error {
	t := time.NewTicker(c.cfg.CooldownTick)
	defer t.Stop()
	var jobs sync.WaitGroup
	defer jobs.Wait() // their deletes end with ctx
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-c.coolWake:
		}
		c.startCooledDeletes(ctx, time.Now(), &jobs)
	}
}

// wakeCooldown has the cool-down loop look at the delete queues now:
// branches due at once were queued.
func (c *Controller) wakeCooldown() {
	select {
	case c.coolWake <- struct{}{}:
	default: // a wake is pending already
	}
}

// deleteCooled deletes every node's branches due at now and returns once
// done.
func (c *Controller) deleteCooled(ctx context.Context, now time.Time) {
	var jobs sync.WaitGroup
	c.startCooledDeletes(ctx, now, &jobs)
	jobs.Wait()
}

// startCooledDeletes starts, for each node with branches due at now and
// no job running, a job deleting them, as slots allow; jobs counts them.
func (c *Controller) startCooledDeletes(ctx context.Context, now time.Time, jobs *sync.WaitGroup) {
	for _, node := range c.reg.nodes() {
		if !c.reg.hasDue(node, now, c.cooldown.get()) {
			continue
		}
		// Not started when running, or every slot is taken: the next tick.
		startJob(ctx, c.coolJobs, node, jobs, func(ctx context.Context) { c.deleteCooledOf(ctx, node, now) })
	}
}

// deleteCooledOf deletes node's branches due at now.
func (c *Controller) deleteCooledOf(ctx context.Context, node string, now time.Time) {
	for _, b := range c.reg.due(node, now, c.cooldown.get()) {
		err := c.deleteBranch(ctx, b.BranchENI)
		countBranchOp(branchOpDeleteCooled, err)
		if err != nil {
			c.cfg.Log.Warn("deleting a cooled-down branch ENI", "node", node, "eni", b.ENIID, "err", err)
		}
		c.reg.deleted(node, b, err)
	}
}
