package ipamd

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
)

// Under custom networking the primary ENI's /28 prefixes are never loaded
// (adopt.go, podCIDRs): they lie in the node's subnet. A node upgraded from
// a build that loaded them has pods on them; their checkpoint entries stay
// pending (dropped after Intervals.PendingWait once the pod is gone), and nothing else
// would ever give the /28 back to the subnet. A stray prefix is one such
// /28 that held a restored pod entry, live or stale, or a cooling address:
// ipamd's for sure (one no entry lay in may be someone else's and is left
// alone). It is released once no pending entry lies in it, no address in
// it still cools and the host routes no pod address in it: the pods on it
// are gone.

// noteStrayPrefixes records the primary ENI's prefixes left out of the
// store, before the checkpoint is restored.
func (c *poolManager) noteStrayPrefixes(prefixes []netip.Prefix) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.strays == nil {
		c.strays = map[netip.Prefix]bool{}
	}
	for _, p := range prefixes {
		if p.Addr().Is4() {
			c.strays[p] = true
		}
	}
}

// keepStraysHolding keeps the stray prefixes in which the checkpoint had
// an entry (res: a pod left pending, a pod gone while ipamd was down, a
// cooling address), and forgets the others.
func (c *poolManager) keepStraysHolding(res datastore.RestoreResult) []netip.Prefix {
	var held []netip.Addr
	for _, a := range slices.Concat(res.Unknown, res.Stale) {
		held = append(held, a.Addr)
	}
	held = append(held, res.UnknownCooling...)
	c.mu.Lock()
	defer c.mu.Unlock()
	for p := range c.strays {
		if !slices.ContainsFunc(held, p.Contains) {
			delete(c.strays, p)
		}
	}
	return c.strayList()
}

// strayList lists the stray prefixes, sorted. Called with mu held.
func (c *poolManager) strayList() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(c.strays))
	for p := range c.strays {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}

// releaseStrayPrefixes gives back to EC2 the stray prefixes no pod uses
// any more: none of the card's pending entries lies in them, no address
// in them still cools, and routed (the host routes to pods, by address;
// nil: unknown, nothing released) leads to no address in them.
func (c *poolManager) releaseStrayPrefixes(ctx context.Context, routed map[netip.Addr]string) {
	c.mu.Lock()
	strays := c.strayList()
	c.mu.Unlock()
	if len(strays) == 0 || routed == nil || c.env.cfg.DisableProvisioning || c.env.terminating.isSet() {
		return
	}
	pending, cooling := c.store.Pending(), c.store.PendingCooling()
	var free []netip.Prefix
	for _, p := range strays {
		if slices.ContainsFunc(pending, func(a datastore.Allocation) bool { return p.Contains(a.Addr) }) ||
			slices.ContainsFunc(cooling, p.Contains) {
			continue
		}
		used := false
		for a := range routed {
			used = used || p.Contains(a)
		}
		if !used {
			free = append(free, p)
		}
	}
	if len(free) == 0 {
		return
	}
	eni := c.env.node.primaryENI
	if err := c.env.ec2.UnassignIPv4Prefixes(ctx, eni, free); err != nil && !awsutils.IsNotFound(err) {
		c.env.log.Warn("could not release the primary ENI's prefixes no pod uses any more (custom networking); retrying at the next sweep",
			"eni", eni, "prefixes", free, "err", err, "ec2Code", awsutils.Code(err))
		return
	}
	c.env.book.noteReleased(time.Now(), free...)
	c.mu.Lock()
	for _, p := range free {
		delete(c.strays, p)
	}
	c.mu.Unlock()
	c.env.log.Info("released the primary ENI's prefixes an earlier build handed out under custom networking, now that no pod uses them",
		"eni", eni, "prefixes", free)
}
