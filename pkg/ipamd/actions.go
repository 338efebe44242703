package ipamd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/pool"
)

// The pool manager's actions on its card, other than creating ENIs
// (eni.go): each changes EC2 and the card's datastore together.

// execute performs one planned action; params is the planner's input now
// (an ENI attach sizes itself again on ADDs arriving meanwhile). grew
// reports ENIs an assign attached beside itself, all created.
func (c *poolManager) execute(ctx context.Context, a pool.Action, params func() pool.Params) (grew bool, err error) {
	switch a.Kind {
	case pool.AssignIPs:
		return c.assignGrowing(ctx, a.ENI, a.Count, params)
	case pool.AssignPrefixes:
		return false, c.assignPrefixes(ctx, a.ENI, a.Count)
	case pool.CreateENI:
		return false, c.createENIs(ctx, a.PerENI(), a.Prefixes, params, nil)
	case pool.ReleaseCIDRs:
		return false, c.releaseCIDRs(ctx, a.ENI, a.CIDRs)
	case pool.FreeENI:
		return false, c.freeENI(ctx, a.ENI)
	}
	return false, nil
}

// assignGrowing assigns count secondary addresses to an ENI. ADDs that
// arrive meanwhile, more than the assign brings and no ENI can take, get
// new ENIs at once, attached beside the assign (pool.MoreENIs) rather than
// after it; it returns once those are done too, with grew set when they
// were all created.
func (c *poolManager) assignGrowing(ctx context.Context, eniID string, count int, params func() pool.Params) (grew bool, err error) {
	var incoming atomic.Int64
	incoming.Store(int64(count))
	assigned := make(chan error, 1)
	go func() {
		err := c.assignIPs(ctx, eniID, count)
		incoming.Store(0)
		assigned <- err
	}()
	var grown chan error
	for {
		var demand <-chan struct{}
		if grown == nil && params != nil && c.env.demand != nil {
			demand = c.env.demand()
		}
		select {
		case err := <-assigned:
			if grown == nil {
				return false, err
			}
			c.env.wake() // the new addresses serve waiting ADDs while the ENIs attach
			if gerr := <-grown; gerr != nil {
				return false, errors.Join(err, grownErr{gerr})
			}
			return true, err
		case <-demand:
			if !c.settled(ctx) || c.askDevice.get() {
				continue
			}
			slots := c.env.node.typ.IPv4PerENI - 1
			in := func() int { return int(incoming.Load()) }
			view, now := c.view(), params()
			if n := pool.MoreENIs(view, now, 0, slots, in()); n > 0 {
				counts := pool.PerNewENI(view, now, 0, slots, in(), n)
				grown = make(chan error, 1)
				go func() { grown <- c.createENIs(ctx, counts, false, params, in) }()
			}
		}
	}
}

func (c *poolManager) assignIPs(ctx context.Context, eniID string, count int) error {
	addrs, err := c.env.ec2.AssignIPv4(ctx, eniID, count)
	if err != nil && count > 1 && !awsutils.IsLimitExceeded(err) && !awsutils.IsThrottle(err) && !awsutils.IsNotFound(err) &&
		ctx.Err() == nil {
		// Upstream's retry with a single address: a nearly full subnet may
		// still have one.
		addrs, err = c.env.ec2.AssignIPv4(ctx, eniID, 1)
	}
	if awsutils.IsLimitExceeded(err) {
		// EC2 says the ENI is already full: learn what it holds.
		return c.resyncENI(ctx, eniID)
	}
	if err != nil {
		c.noteInsufficient(err, c.subnetOf(eniID))
		return fmt.Errorf("assigning %d secondary IPv4 addresses to %s: %w", count, eniID, err)
	}
	cidrs := make([]netip.Prefix, len(addrs))
	for i, a := range addrs {
		cidrs[i] = netip.PrefixFrom(a, 32)
	}
	return c.addCIDRs(eniID, cidrs)
}

func (c *poolManager) assignPrefixes(ctx context.Context, eniID string, count int) error {
	prefixes, err := c.env.ec2.AssignIPv4Prefixes(ctx, eniID, count)
	if awsutils.Code(err) == awsutils.CodeInsufficientCidrBlocks {
		return c.fallbackToSecondary("assigning prefixes to " + eniID)
	}
	if awsutils.IsLimitExceeded(err) {
		return c.resyncENI(ctx, eniID)
	}
	if err != nil {
		c.noteInsufficient(err, c.subnetOf(eniID))
		return fmt.Errorf("assigning %d IPv4 prefixes to %s: %w", count, eniID, err)
	}
	return c.addCIDRs(eniID, prefixes)
}

// fallbackToSecondary switches card c to /32 secondary addresses after EC2
// answered InsufficientCidrBlocks (the subnet is too fragmented for a /28):
// the next plan grows with /32s. Prefixes already held keep their pods, and
// empty ones are released by the planner's cleanup.
func (c *poolManager) fallbackToSecondary(while string) error {
	c.env.log.Warn("EC2 has no free /28 block in the subnet (InsufficientCidrBlocks): falling back to secondary IPs on this network card",
		"card", c.index, "while", while)
	if err := c.store.SetMode(datastore.ModeSecondaryIPv4); err != nil {
		return fmt.Errorf("falling back to secondary IPs on card %d: %w", c.index, err)
	}
	c.pd.set(false)
	c.noteFallback(time.Now())
	return nil
}

// resyncENI adds every address EC2 lists on the ENI that the store lacks.
func (c *poolManager) resyncENI(ctx context.Context, eniID string) error {
	enis, _, err := c.env.ec2.DescribeENIs(ctx, []string{eniID})
	if err != nil {
		return fmt.Errorf("re-reading full ENI %s: %w", eniID, err)
	}
	var errs []error
	for _, e := range enis {
		errs = append(errs, c.addCIDRs(eniID, podCIDRs(e, c.env.cfg.EnableIPv6, c.env.cfg.CustomNetworking && e.ID == c.env.node.primaryENI)))
	}
	return errors.Join(errs...)
}

// releaseCIDRs removes unused CIDRs from the store, then gives them back
// to EC2. A CIDR a pod took meanwhile is skipped. If EC2 answers with an
// error the release may still have happened (a cancelled call EC2 applied,
// "not assigned" because it is already gone), so only what EC2 still lists
// goes back into the store.
func (c *poolManager) releaseCIDRs(ctx context.Context, eniID string, cidrs []netip.Prefix) error {
	var addrs []netip.Addr
	var prefixes []netip.Prefix
	for _, p := range cidrs {
		if _, err := c.store.RemoveCIDR(eniID, p, false); err != nil && !errors.Is(err, datastore.ErrCheckpoint) {
			if !errors.Is(err, datastore.ErrCIDRInUse) && !errors.Is(err, datastore.ErrUnknownCIDR) {
				c.env.log.Warn("could not take a CIDR out of the store to release it; keeping it", "eni", eniID, "cidr", p, "err", err)
			}
			continue // in use since the plan, or gone: keep it
		}
		if p.Bits() == 32 {
			addrs = append(addrs, p.Addr())
		} else {
			prefixes = append(prefixes, p)
		}
	}
	now := time.Now()
	var failed []netip.Prefix
	var callErrs []error
	if len(addrs) > 0 {
		if err := c.env.ec2.UnassignIPv4(ctx, eniID, addrs); err != nil && !awsutils.IsNotFound(err) {
			callErrs = append(callErrs, fmt.Errorf("releasing %d addresses of %s: %w", len(addrs), eniID, err))
			for _, a := range addrs {
				failed = append(failed, netip.PrefixFrom(a, 32))
			}
		} else {
			for _, a := range addrs {
				c.env.book.noteReleased(now, netip.PrefixFrom(a, 32))
			}
		}
	}
	if len(prefixes) > 0 {
		if err := c.env.ec2.UnassignIPv4Prefixes(ctx, eniID, prefixes); err != nil && !awsutils.IsNotFound(err) {
			callErrs = append(callErrs, fmt.Errorf("releasing %d prefixes of %s: %w", len(prefixes), eniID, err))
			failed = append(failed, prefixes...)
		} else {
			c.env.book.noteReleased(now, prefixes...)
		}
	}
	if len(failed) > 0 {
		c.restoreUnreleased(ctx, eniID, failed)
	}
	return errors.Join(callErrs...)
}

// restoreUnreleased puts back into the store the CIDRs of a failed release
// that EC2 still lists on the ENI. If EC2 cannot be asked, none goes back:
// handing out an address EC2 released is worse than idling one, which the
// reconcile adopts again.
func (c *poolManager) restoreUnreleased(ctx context.Context, eniID string, failed []netip.Prefix) {
	// The release may have failed because ctx ended; the answer still matters.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	enis, _, err := c.env.ec2.DescribeENIs(dctx, []string{eniID})
	if err != nil {
		c.env.log.Warn("release failed and EC2 cannot say what the ENI still holds; the reconcile adopts what it lists",
			"eni", eniID, "cidrs", len(failed), "err", err)
		return
	}
	held := map[netip.Prefix]bool{}
	for _, e := range enis {
		for _, p := range eniCIDRs(e) {
			held[p] = true
		}
	}
	now := time.Now()
	for _, p := range failed {
		if !held[p] {
			c.env.book.noteReleased(now, p) // EC2 released it after all
			continue
		}
		if err := c.store.AddCIDR(eniID, p); err != nil && !errors.Is(err, datastore.ErrDuplicateCIDR) {
			c.env.log.Warn("could not put back a CIDR EC2 did not release", "eni", eniID, "cidr", p, "err", err)
		}
	}
}

// freeENI removes an ENI without pods from the store, tears down its host
// networking and detaches and deletes it.
func (c *poolManager) freeENI(ctx context.Context, eniID string) error {
	info, ok := c.store.ENI(eniID)
	if !ok {
		return nil
	}
	if _, err := c.store.RemoveENI(eniID, false); err != nil && !errors.Is(err, datastore.ErrCheckpoint) {
		if errors.Is(err, datastore.ErrENIInUse) || errors.Is(err, datastore.ErrUnknownENI) {
			return nil // a pod took an address since the plan, or it is gone
		}
		return fmt.Errorf("taking ENI %s out of the store: %w", eniID, err)
	}
	primaryIP, _ := c.env.book.primaryIP(eniID)
	if err := c.env.host.TeardownENI(ctx, primaryIP, info.RouteTableID); err != nil {
		c.env.log.Warn("could not tear down host networking of a freed ENI", "eni", eniID, "err", err)
	}
	// Bounded: a detach EC2 leaves pending would otherwise hold the pool
	// (and the reconcile) for as long as ipamd runs; retryUnfreed finishes.
	fctx, cancel := context.WithTimeout(ctx, c.env.times.FreeWait)
	defer cancel()
	if err := c.env.ec2.FreeENI(fctx, eniID, c.env.book.attachID(eniID)); err != nil {
		// Maybe still attached: keep its slot taken until retryUnfreed
		// frees it or reconcile adopts it again.
		c.keepUnfreed(eniID, info.DeviceNumber)
		return fmt.Errorf("freeing ENI %s: %w", eniID, err)
	}
	c.env.book.forget(eniID)
	c.env.log.Info("ENI freed", "eni", eniID, "card", c.index)
	now := time.Now()
	for _, ci := range info.CIDRs {
		c.env.book.noteReleased(now, ci.Prefix)
	}
	return nil
}
