package ipamd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/pool"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
)

// createENIs runs the ENI life cycle for one ENI per entry of counts, each
// with that many addresses (or prefixes): create (tagged, described
// aws-K8S-<instance>) → attach (awsutils undoes these on failure) →
// delete-on-termination (a failure keeps the ENI;
// retryDeleteOnTermination sets it later) → host networking → datastore,
// instance metadata only watched (EC2's data wins). The EC2
// calls of every ENI run at once on distinct device indices; each ENI is
// wired as soon as EC2 has attached it, so waiting ADDs take its addresses
// while the others still attach. ADDs arriving meanwhile that the ENIs in
// flight cannot hold get more ENIs at once (pool.MoreENIs). A subnet
// without room sends that ENI to the next subnet (subnet discovery). A
// failure after the attach detaches and deletes the ENI again; if that
// fails too, retryUnfreed finishes it, so no ENI leaks. The others are
// kept.
// incoming (nil: none) is how many addresses (or prefixes) an assign under
// way brings to the card's ENIs.
func (c *poolManager) createENIs(ctx context.Context, counts []int, prefixes bool, params func() pool.Params, incoming func() int) error {
	if len(counts) == 0 {
		return nil
	}
	subnets, err := c.env.subnets.forNewENI(ctx)
	if err != nil {
		return err
	}
	type launch struct {
		subnet, device int
		count          int     // addresses (or prefixes) asked of EC2
		tried          []error // earlier subnets' answers
	}
	// An ENI in flight holds a whole ENI's worth once attached, however
	// few EC2 is asked for now (WARM_IP_TARGET, WARM_PREFIX_TARGET): the
	// next plan assigns there, which is cheaper than another ENI. So ADDs
	// arriving meanwhile are measured against that, and ENIs started for
	// them are asked for in full (under prefix delegation, no more
	// prefixes than max pods leaves room for: pool.PerNewENI).
	full := max(slices.Max(counts), c.env.node.typ.IPv4PerENI-1)
	type result struct {
		launch
		eni awsutils.ENI
		err error
	}
	results := make(chan result)
	taken := map[int]bool{} // device indices of ENIs in flight
	start := func(l launch) {
		taken[l.device] = true
		req := c.allocateRequest(subnets[l.subnet], l.device, l.count, prefixes)
		go func() {
			e, err := c.env.ec2.AllocateENI(ctx, req)
			results <- result{l, e, err}
		}()
	}
	if c.askDevice.get() {
		start(launch{device: 0, count: counts[0]}) // one ENI; awsutils asks EC2 for the lowest free index
	} else {
		for i, d := range c.freeDevices(len(counts), taken) {
			start(launch{device: d, count: counts[i]})
		}
	}
	var errs []error
	grow, next := params != nil && c.env.demand != nil, 0 // next: the subnet for more ENIs
	for len(taken) > 0 {
		var demand <-chan struct{}
		if grow {
			demand = c.env.demand()
		}
		var r result
		select {
		case <-demand:
			if c.settled(ctx) && !c.askDevice.get() {
				in := 0
				if incoming != nil {
					in = incoming()
				}
				view, now := c.view(), params()
				n := pool.MoreENIs(view, now, len(taken), full, in)
				ask := pool.PerNewENI(view, now, len(taken), full, in, n)
				for i, d := range c.freeDevices(len(ask), taken) {
					start(launch{subnet: next, device: d, count: ask[i]})
				}
			}
			continue
		case r = <-results:
		}
		e, sn := r.eni, subnets[r.subnet]
		err := c.keptWithoutDOT(e, r.err)
		if err == nil {
			c.askDevice.set(false)
			c.env.log.Info("ENI attached", "eni", e.ID, "subnet", sn.ID, "card", c.index, "device", e.Attachment.DeviceIndex,
				"addresses", len(e.SecondaryIPv4), "prefixes", len(e.IPv4Prefixes), "inFlight", len(taken)-1)
			if err := c.wire(ctx, e, sn.CIDR); err != nil {
				errs = append(errs, err)
			} else {
				c.env.wake() // waiting ADDs take this ENI's addresses while the next is wired
			}
			delete(taken, r.device) // in the store now, or freed, or kept unfreed
			continue
		}
		delete(taken, r.device)
		err = fmt.Errorf("creating an ENI in %s: %w", sn.where(), err)
		if awsutils.IsInsufficientCapacity(err) {
			c.env.subnets.forget() // its free count is stale now
		}
		c.askDevice.set(!awsutils.IsInsufficientCapacity(err))
		if awsutils.IsInsufficientCapacity(err) && r.subnet < len(subnets)-1 {
			next = max(next, r.subnet+1)
			start(launch{subnet: r.subnet + 1, device: r.device, count: r.count, tried: append(r.tried, err)})
			continue
		}
		grow = false // a failure: the next cycle plans again
		if prefixes && awsutils.Code(err) == awsutils.CodeInsufficientCidrBlocks {
			// No free /28 is not a full subnet: the next plan grows with /32s.
			if ferr := c.fallbackToSecondary("creating an ENI with prefixes in subnet " + sn.ID); ferr != nil {
				errs = append(errs, ferr)
			}
			continue
		}
		c.noteInsufficient(err, sn.ID)
		errs = append(errs, r.tried...)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// settled waits for new demand to settle before it is sized: an ADD that
// has just taken an address still counts as waiting for a moment (the
// pool's trigger gathers a burst the same way). False when ctx ended.
func (c *poolManager) settled(ctx context.Context) bool {
	t := time.NewTimer(poolGather)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// allocateRequest asks for one ENI in subnet sn at the device index, with
// count addresses (or prefixes).
func (c *poolManager) allocateRequest(sn subnetChoice, device, count int, prefixes bool) awsutils.AllocateENIRequest {
	req := awsutils.AllocateENIRequest{
		CreateENIRequest: awsutils.CreateENIRequest{
			InstanceID: c.env.node.id.InstanceID, SubnetID: sn.ID, SecurityGroups: cmpSlice(sn.SGs, c.env.node.sgs.get()),
		},
		NetworkCard: c.index,
		DeviceIndex: device,
	}
	switch {
	case c.env.cfg.EnableIPv6:
		// An address for the ENI's own link (hostAddress); its /80, whence
		// every pod address, follows at once (ensureIPv6Prefixes).
		req.IPv6AddressCount = count
	case prefixes:
		req.IPv4PrefixCount = count
	default:
		req.SecondaryIPv4Count = count
	}
	return req
}

// keptWithoutDOT turns AllocateENI's "attached, but delete-on-termination
// unset" into success: the ENI is usable, so it is kept (it counts against
// the ENI limit and its device index stays taken) and the flag is set on a
// later pool cycle (docs/compatibility.md, "ipamd: failed ENI calls").
func (c *poolManager) keptWithoutDOT(e awsutils.ENI, err error) error {
	if !errors.Is(err, awsutils.ErrDeleteOnTerminationUnset) {
		return err
	}
	c.env.log.Warn("new ENI kept without delete-on-termination; retrying later", "eni", e.ID, "err", err)
	c.env.book.awaitDeleteOnTermination(e.ID, e.Attachment.ID)
	return nil
}

// wire sets a new attached ENI up on the host and in the datastore. If
// that fails the ENI is detached and deleted again (unless ipamd is
// stopping); if the undo fails too, its slot stays taken until
// retryUnfreed frees it.
func (c *poolManager) wire(ctx context.Context, e awsutils.ENI, subnet netip.Prefix) error {
	err := c.setupNewENI(ctx, e, subnet)
	if err == nil || c.keepForNextRun(ctx, e.ID, err) {
		return err
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	c.env.book.deleteOnTerminationDone(e.ID)
	if ferr := c.env.ec2.FreeENI(rctx, e.ID, e.Attachment.ID); ferr != nil {
		c.keepUnfreed(e.ID, e.Attachment.DeviceIndex)
		return errors.Join(err, fmt.Errorf("undoing: %w", ferr))
	}
	return err
}

// keepForNextRun reports whether a new ENI whose setup failed only because
// ipamd is stopping (ctx ended: SIGTERM, a DaemonSet rollout) stays
// attached: the next ipamd adopts it at start like any attached ENI, so
// freeing it would cost two EC2 calls now and an attach again in a moment.
func (c *poolManager) keepForNextRun(ctx context.Context, eniID string, err error) bool {
	if ctx.Err() == nil {
		return false
	}
	c.env.log.Info("stopping while a new ENI was set up; it stays attached for the next ipamd", "eni", eniID, "err", err)
	return true
}

// setupNewENI waits (bounded) for instance metadata to list the ENI, wires
// it on the host and adds it to the datastore; on failure it undoes its own
// steps (the caller frees the ENI in EC2).
func (c *poolManager) setupNewENI(ctx context.Context, e awsutils.ENI, subnet netip.Prefix) error {
	// EC2's answer has everything but, perhaps, the subnet's CIDR: only
	// then is lagging instance metadata worth waiting for. Otherwise the
	// ENI serves pods at once and instance metadata is only watched (off
	// the pool's path) until it lists the ENI, for the warning and for
	// introspection's "waiting on".
	if subnet.IsValid() {
		go c.env.imds.confirm(ctx, e.ID)
	} else if md, ok := c.env.imds.wait(ctx, e.ID); ok {
		subnet = md.SubnetIPv4CIDR
	} else {
		c.env.log.Warn("instance metadata does not list the new ENI yet; proceeding with EC2's data", "eni", e.ID,
			"waited", c.env.times.IMDSWait)
	}
	table := hostcontract.RouteTable(c.index, e.Attachment.DeviceIndex)
	mac, err := net.ParseMAC(e.MAC)
	if err != nil {
		return fmt.Errorf("new ENI %s has MAC %q: %w", e.ID, e.MAC, err)
	}
	if !subnet.IsValid() {
		if subnet, err = c.env.subnets.cidr(ctx, e.SubnetID); err != nil {
			return err
		}
	}
	addr, hostSubnet := c.env.subnets.hostAddress(ctx, e, subnet)
	if err := c.env.host.SetupENI(ctx, networkutils.ENI{MAC: mac, PrimaryIP: addr, Subnet: hostSubnet,
		DeviceNumber: e.Attachment.DeviceIndex, NetworkCard: c.index, MTU: c.env.cfg.ENIMTU}); err != nil {
		return fmt.Errorf("host networking of new ENI %s: %w", e.ID, err)
	}
	undoHost := func() {
		if err := c.env.host.TeardownENI(context.WithoutCancel(ctx), addr, table); err != nil {
			c.env.log.Warn("could not undo host networking of ENI", "eni", e.ID, "err", err)
		}
	}
	if err := c.store.AddENI(datastore.ENI{ID: e.ID, DeviceNumber: e.Attachment.DeviceIndex, RouteTableID: table,
		SubnetID: e.SubnetID, CreatedAt: time.Now()}); err != nil {
		undoHost()
		return err
	}
	for _, p := range podCIDRs(e, c.env.cfg.EnableIPv6, false) {
		err := c.store.AddCIDR(e.ID, p)
		if errors.Is(err, datastore.ErrDuplicateCIDR) {
			// EC2 just gave the new ENI a CIDR the store still has on
			// another ENI: that one was deleted behind ipamd's back and
			// EC2 reused its address. The new ENI serves with the rest;
			// the reconcile drops the gone ENI and adopts this CIDR.
			c.env.log.Warn("EC2 gave a new ENI an address the datastore holds on another ENI (gone?); adopting it at the reconcile",
				"eni", e.ID, "cidr", p, "err", err)
			if c.env.reconcile != nil {
				c.env.reconcile()
			}
			continue
		}
		if err != nil {
			if _, rerr := c.store.RemoveENI(e.ID, true); rerr != nil {
				c.env.log.Warn("could not undo datastore entry of ENI", "eni", e.ID, "err", rerr)
			}
			undoHost()
			return err
		}
	}
	c.env.book.remember(e.ID, addr, e.Attachment.ID)
	c.env.node.rememberMAC(e.ID, e.MAC)
	return nil
}

// cmpSlice returns a unless it is empty, else b.
func cmpSlice(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

// retryUnfreed frees again the ENIs of the card that a free or an undo left
// behind; one reconcile adopted again is the store's once more. One
// describe tells where each stands, so an ENI EC2 still detaches costs
// that call and no wait: it is deleted on a later cycle. A failure backs
// off like a failed free (every pool cycle, which each ADD may start,
// would otherwise call EC2 again).
func (c *poolManager) retryUnfreed(ctx context.Context) {
	if c.backingOff(failFreeENI) || !c.detachLookDue(time.Now()) {
		return
	}
	var ids []string
	for _, id := range c.unfreedIDs() {
		if _, ok := c.store.ENI(id); ok {
			c.forgetUnfreed(id)
			continue
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return
	}
	enis, vanished, err := c.env.ec2.DescribeENIs(ctx, ids)
	if err != nil {
		c.env.log.Warn("could not look at the ENIs ipamd let go of; retrying later", "enis", ids, "card", c.index, "err", err)
		c.backOff(failFreeENI, err)
		return
	}
	var failed error
	freed, detaching := len(vanished) > 0, false
	for _, id := range vanished {
		c.freed(id)
	}
	for _, e := range enis {
		var err error
		switch {
		case e.Attachment == nil:
			err = c.env.ec2.DeleteENI(ctx, e.ID)
			if err != nil && !awsutils.IsThrottle(err) {
				// Detached, it takes no ENI slot: holding one for it would
				// starve the pool at a limit it is not at. The leaked-ENI
				// sweep deletes it once EC2 lets it (it is ours: tagged).
				c.env.log.Warn("EC2 refuses to delete a detached ENI; the leaked-ENI sweep deletes it later", "eni", e.ID,
					"card", c.index, "err", err)
				c.forgetUnfreed(e.ID)
				c.env.book.forget(e.ID)
				continue
			}
		case leaving(e.Attachment):
			detaching = true
			continue // EC2 is detaching it: delete it once it is done
		default:
			fctx, cancel := context.WithTimeout(ctx, c.env.times.FreeWait)
			err = c.env.ec2.FreeENI(fctx, e.ID, e.Attachment.ID)
			cancel()
		}
		if err != nil {
			c.env.log.Warn("could not free an ENI ipamd let go of; retrying later", "eni", e.ID, "card", c.index, "err", err)
			failed = err
			continue
		}
		c.freed(e.ID)
		freed = true
	}
	switch {
	case failed != nil:
		c.backOff(failFreeENI, failed)
	case freed:
		c.clearBackoff(failFreeENI)
	}
	c.lookedAtDetaching(detaching)
}

// detachLookDue reports whether retryUnfreed may look at the unfreed ENIs
// now: while EC2 keeps one detaching (for minutes at times) the looks are
// spaced like a failure's retries, or every pool cycle, which each ADD may
// start, would describe it again.
func (c *poolManager) detachLookDue(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !now.Before(c.detachLookAt)
}

// maxDetachLookPause bounds the pause between looks at a detaching ENI:
// lower than a failure's minute, as the slot comes back only at a look.
const maxDetachLookPause = 10 * time.Second

// lookedAtDetaching doubles the pause before the next look while an ENI
// is still detaching (up to maxDetachLookPause), and ends it once none is.
func (c *poolManager) lookedAtDetaching(detaching bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !detaching {
		c.detachLooks, c.detachLookAt = 0, time.Time{}
		return
	}
	c.detachLooks++
	c.detachLookAt = time.Now().Add(min(c.backoff<<min(c.detachLooks-1, 10), maxDetachLookPause))
}

// freed forgets an unfreed ENI that is gone from EC2.
func (c *poolManager) freed(id string) {
	c.forgetUnfreed(id)
	c.env.book.forget(id)
	c.env.log.Info("ENI freed on retry", "eni", id, "card", c.index)
}
