package ipamd

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/pool"
)

// maxStepsPerCycle bounds the actions of one pool cycle per card, so a
// misbehaving EC2 cannot keep the manager in one cycle forever.
const maxStepsPerCycle = 16

// poolCycler runs one pool cycle over every card's pool manager: the
// node-wide steps (CNINode features, ENIs still without
// delete-on-termination) and then each card's own cycle. It owns no state;
// it holds the lock that serialises what changes the pool in EC2.
type poolCycler struct {
	cards       *cardSet // the managed cards, built by Init before it is ready
	cfg         config.Config
	ec2         EC2
	book        *eniBook
	kube        *kubeRef
	features    *cniNodeFeatures
	observe     *observer
	ready       *latch
	terminating *latch
	changes     *sync.Mutex
	waiting     func() int // AddNetwork calls waiting for an address (handout)
	limited     *signal    // tells waiting ADDs every card is at its hard limit (handout)
	log         *slog.Logger
}

// cycle plans and executes actions on every card until each is at its
// targets (or blocked).
func (p *poolCycler) cycle(ctx context.Context) {
	if !p.ready.isSet() {
		return
	}
	p.changes.Lock()
	defer p.changes.Unlock()
	defer p.observe.pool()
	schedulable := p.schedulable(ctx)
	if schedulable && !p.terminating.isSet() && !p.cfg.DisableProvisioning {
		p.features.declareCustomNetworking(ctx)
		p.features.declareSGPP(ctx)
	}
	if !p.cfg.DisableProvisioning {
		p.retryDeleteOnTermination(ctx)
		for _, c := range p.cards.all() {
			c.retryUnfreed(ctx)
		}
	}
	for _, c := range p.cards.all() {
		if p.cfg.EnableIPv6 {
			// No warm pool in IPv6 mode: each ENI's /80 serves every pod.
			if schedulable && !p.terminating.isSet() && !c.backingOff(failCreateENI) && c.ensureIPv6ENI(ctx) &&
				!c.backingOff(failIPv6Prefix) {
				c.ensureIPv6Prefixes(ctx)
			}
			continue
		}
		c.cycle(ctx, schedulable)
	}
	for _, c := range p.cards.all() {
		rewireReadopted(ctx, c, c.env.host, c.env.log)
	}
	if p.waiting() > 0 && p.cards.atHardLimit() {
		// Waiting ADDs learn at once that no refill can come.
		p.limited.broadcast()
	}
}

func (p *poolCycler) schedulable(ctx context.Context) bool {
	if p.cfg.ManageENIsNonSchedulable {
		return true
	}
	ok, err := p.kube.get().NodeSchedulable(ctx)
	if err != nil {
		p.log.Warn("could not read the node's taints; assuming schedulable", "err", err)
		return true
	}
	return ok
}

// retryDeleteOnTermination sets delete-on-termination on the ENIs whose
// AllocateENI could not; an ENI no longer in a datastore (freed, or dropped
// by reconcile) is forgotten. A failure backs off (card 0 keeps the
// pause): every pool cycle, which each ADD may start, would otherwise call
// EC2 again.
func (p *poolCycler) retryDeleteOnTermination(ctx context.Context) {
	c0, ok := p.cards.first()
	if !ok || c0.backingOff(failDeleteOnTermination) {
		return
	}
	var failed error
	done := false
	for id, att := range p.book.pendingDeleteOnTermination() {
		if !p.cards.holdsENI(id) {
			p.book.deleteOnTerminationDone(id)
			continue
		}
		err := p.ec2.SetDeleteOnTermination(ctx, id, att)
		if err != nil && !awsutils.IsNotFound(err) {
			p.log.Warn("could not set delete-on-termination; retrying later", "eni", id, "err", err)
			failed = err
			continue
		}
		p.book.deleteOnTerminationDone(id)
		done = true
	}
	switch {
	case failed != nil:
		c0.backOff(failDeleteOnTermination, failed)
	case done:
		c0.clearBackoff(failDeleteOnTermination)
	}
}

// limitText names card c's hard limit ("" when it can still grow): the
// instance type, its ENIs × addresses, or max pods (maxPods set).
func (c *poolManager) limitText(view pool.Pool, p pool.Params) (text string, maxPods bool) {
	l, ok := pool.AtHardLimit(view, p)
	if !ok {
		return "", false
	}
	if l.MaxPods {
		return fmt.Sprintf("card %d holds %d addresses for pods (%d more cooling), the node's max pods (%d)",
			c.index, l.Total-l.Cooling, l.Cooling, p.MaxPods), true
	}
	unit := "secondary IPv4 addresses"
	if p.PrefixDelegation {
		unit = "/28 prefixes"
	}
	s := fmt.Sprintf("%s card %d takes %d ENIs × %d %s", c.env.node.typ.Type, c.index, l.ENIs, l.Slots, unit)
	if c.env.cfg.MaxENI >= 1 && c.env.cfg.MaxENI == l.ENIs {
		s += fmt.Sprintf(" (MAX_ENI=%d)", c.env.cfg.MaxENI)
	}
	if view.Unmanaged > 0 {
		s += fmt.Sprintf(", %d of the ENIs unmanaged", view.Unmanaged)
	}
	if p.ReserveTrunk && !view.Stats(p.PrefixDelegation).HasTrunk {
		s += ", one ENI slot reserved for the trunk ENI"
	}
	return s + fmt.Sprintf(": every ENI attached and full, %d pod addresses", l.Total), false
}

// ensureIPv6Prefixes gives every ENI of card c its /80; a failure backs
// off like a failed IPv4 pool action, until a prefix is given.
func (c *poolManager) ensureIPv6Prefixes(ctx context.Context) {
	for _, e := range c.store.ENIs() {
		if err := c.ensureIPv6Prefix(ctx, e.ID); err != nil {
			c.env.log.Warn("could not give an ENI its IPv6 prefix", "card", c.index, "eni", e.ID, "err", err,
				"ec2Code", awsutils.Code(err))
			c.setState(causeOf(err), err)
			c.backOff(failIPv6Prefix, err)
			return
		}
	}
	c.setState("", nil)
	c.clearBackoff(failIPv6Prefix)
}

// ensureIPv6ENI gives a managed card above 0 that has no ENI one, with
// its /80, as upstream attaches one per such card at start: a multi-NIC
// pod needs an address on every card, and IPv6 mode has no warm pool that
// would grow one. A failure backs off like a failed IPv4 pool action;
// false then.
func (c *poolManager) ensureIPv6ENI(ctx context.Context) bool {
	if c.index == 0 || c.env.cfg.DisableProvisioning || c.maxENIs < 1 {
		return true
	}
	for _, e := range c.store.ENIs() {
		if !e.IsTrunk {
			return true
		}
	}
	if err := c.createENIs(ctx, []int{1}, false, nil, nil); err != nil {
		c.env.log.Warn("could not give a network card its ENI", "card", c.index, "err", err, "ec2Code", awsutils.Code(err))
		c.setState(causeOf(err), err)
		c.backOff(failCreateENI, err)
		return false
	}
	c.clearBackoff(failCreateENI)
	return true
}

// ensureIPv6Prefix gives an ENI its one /80 (IPv6 mode: every pod address
// of the ENI comes from it, so there is no warm pool to keep).
func (c *poolManager) ensureIPv6Prefix(ctx context.Context, eniID string) error {
	info, ok := c.store.ENI(eniID)
	if !ok || info.IsTrunk {
		return nil
	}
	for _, ci := range info.CIDRs {
		if ci.Prefix.Addr().Is6() {
			return nil
		}
	}
	if c.env.cfg.DisableProvisioning {
		return fmt.Errorf("ENI %s has no IPv6 prefix and DISABLE_NETWORK_RESOURCE_PROVISIONING=true", eniID)
	}
	prefixes, err := c.env.ec2.AssignIPv6Prefixes(ctx, eniID, 1)
	if err != nil {
		return fmt.Errorf("assigning an IPv6 prefix to %s: %w", eniID, err)
	}
	if err := c.addCIDRs(eniID, prefixes); err != nil {
		return err
	}
	c.env.wake()
	return nil
}

// params builds the planner's input for card c now.
func (c *poolManager) params(schedulable, released, freed bool) pool.Params {
	now := time.Now()
	g := c.gates()
	insufficient, lastRelease, code := g.insufficient, g.lastRelease, g.insuffCode
	provisioning := !c.env.cfg.DisableProvisioning && !c.env.terminating.isSet() && schedulable
	p := pool.Params{
		WarmENI: c.env.cfg.WarmENITarget, WarmIP: c.env.cfg.WarmIPTarget, MinimumIP: c.env.cfg.MinimumIPTarget,
		WarmPrefix: c.env.cfg.WarmPrefixTarget, PrefixDelegation: g.prefixes,
		MaxENIs: c.maxENIs, IPv4PerENI: c.env.node.typ.IPv4PerENI, MaxPods: c.env.node.maxPods.get(),
		CustomNetworking: c.env.cfg.CustomNetworking,
		ReserveTrunk:     c.env.sgpp() && c.env.node.typ.Type != "" && c.index == 0,
		Pending:          c.env.waiting(),
		Trying:           c.env.trying(),
		CanAllocate:      provisioning && !now.Before(insufficient),
		CanRelease: provisioning && !released && now.Sub(lastRelease) >= c.env.times.ReleaseSpacing &&
			c.pausedFor(failRelease, now) == "",
		CanFreeENI:      provisioning && !freed && c.pausedFor(failFreeENI, now) == "",
		MinENIAge:       c.env.times.MinENIAge,
		Now:             now,
		AssignPaused:    c.pausedFor(failAssign, now),
		CreateENIPaused: c.pausedFor(failCreateENI, now),
		AssignSkipped:   c.assignSkipped(now),
	}
	switch {
	case c.env.cfg.DisableProvisioning:
		p.CooldownNote = "DISABLE_NETWORK_RESOURCE_PROVISIONING=true: ipamd never allocates addresses"
	case c.env.terminating.isSet():
		p.CooldownNote = "ipamd is shutting down"
	case !schedulable:
		p.CooldownNote = "node is unschedulable (AWS_MANAGE_ENIS_NON_SCHEDULABLE=false)"
	case now.Before(insufficient):
		p.CooldownNote = fmt.Sprintf("subnet full (EC2 %s); retrying after %s", code, insufficient.Format(time.RFC3339))
	}
	if c.index > 0 {
		p.Pending = 0 // pods spill to card > 0 only once card 0 is exhausted
	}
	if p.Pending > 0 {
		p.CoolingSoon = c.coolingWithin(now.Add(c.env.times.AttachTime))
	}
	return p
}

// coolingWithin counts card c's cooling addresses whose cooldown ends by t.
func (c *poolManager) coolingWithin(t time.Time) int {
	count := 0
	for _, e := range c.store.Snapshot() {
		for _, ci := range e.CIDRs {
			for _, cl := range ci.CoolingList {
				if !cl.UnassignedAt.Add(c.env.cfg.IPCooldown).After(t) {
					count++
				}
			}
		}
	}
	return count
}

func (c *poolManager) cycle(ctx context.Context, schedulable bool) {
	c.resumePrefixes(time.Now())
	released, freed := false, false
	for range maxStepsPerCycle {
		if ctx.Err() != nil {
			return
		}
		view, p := c.view(), c.params(schedulable, released, freed)
		a := pool.Plan(view, p)
		if a.Kind == pool.None {
			c.setState(starvedText(a), nil)
			c.setFull(c.limitText(view, p))
			return
		}
		c.env.log.Debug("pool action", "card", c.index, "action", a.Kind.String(), "eni", a.ENI, "count", a.Count,
			"cidrs", len(a.CIDRs), "reason", a.Reason)
		// The limit an earlier plan found holds only until the pool
		// changes: an ENI freed or addresses released (demand gone for a
		// moment in a burst) leave room, and ADDs that miss meanwhile
		// must wait for the growth, not fail on the old limit. The next
		// plan that finds nothing to do records it again.
		c.setFull("", false)
		done := c.env.observe.inProgress(actionFn(a.Kind))
		grew, err := c.execute(ctx, a, func() pool.Params { return c.params(schedulable, released, freed) })
		done()
		c.env.observe.action(a, err)
		c.env.last.set(describeAction(c, a, err), time.Now())
		switch a.Kind {
		case pool.ReleaseCIDRs:
			released = true
			c.released(time.Now())
		case pool.FreeENI:
			freed = true
		}
		if err != nil {
			if awsutils.IsUnauthorized(err) {
				c.env.kube.get().Eventf(ctx, "Warning", "MissingIAMPermissions", "Unauthorized operation: %s", causeOf(err))
			}
			c.env.log.Warn("pool action failed", "card", c.index, "action", a.Kind.String(), "eni", a.ENI, "err", err,
				"ec2Code", awsutils.Code(err))
			c.setState(causeOf(err), err)
			c.setFull("", false)
		}
		failed, succeeded := outcomes(a, grew, err)
		gone := false
		if a.Kind == pool.AssignIPs || a.Kind == pool.AssignPrefixes {
			if aerr, ok := failed[failAssign]; ok && awsutils.IsNotFound(aerr) {
				// That ENI is gone, not assigning: the next plan grows
				// elsewhere, in this cycle.
				delete(failed, failAssign)
				c.noteGone(a.ENI, aerr)
				gone = len(failed) == 0
			} else if !ok {
				c.assignWorked(a.ENI)
			}
		}
		for _, k := range succeeded {
			c.clearBackoff(k)
		}
		for k, kerr := range failed {
			if !awsutils.IsInsufficientCapacity(kerr) {
				c.backOff(k, kerr)
			}
		}
		if err != nil && !gone {
			return
		}
		if a.Kind != pool.ReleaseCIDRs && a.Kind != pool.FreeENI {
			c.env.wake()
		}
	}
}

// describeAction is the last-action line of /v1/pool.
func describeAction(c *poolManager, a pool.Action, err error) string {
	s := fmt.Sprintf("card %d: %s", c.index, a.Kind)
	switch a.Kind {
	case pool.AssignIPs, pool.AssignPrefixes:
		s += fmt.Sprintf(" %d on %s", a.Count, a.ENI)
	case pool.CreateENI:
		s += fmt.Sprintf(" with %d", a.Count)
	case pool.ReleaseCIDRs:
		s += fmt.Sprintf(" %d of %s", len(a.CIDRs), a.ENI)
	case pool.FreeENI:
		s += " " + a.ENI
	}
	if a.Reason != "" {
		s += " (" + a.Reason + ")"
	}
	if err != nil {
		s += ": failed: " + causeOf(err)
	}
	return s
}

func starvedText(a pool.Action) string {
	if a.Starved {
		return a.Reason
	}
	return ""
}

// causeOf turns an execution error into the short cause AddNetwork reports.
func causeOf(err error) string {
	code := awsutils.Code(err)
	switch {
	case code == awsutils.CodeInsufficientFreeAddresses || code == awsutils.CodeInsufficientCidrBlocks:
		return "subnet full: EC2 " + code
	case awsutils.IsThrottle(err):
		return "EC2 is throttling this account: " + code
	case awsutils.IsUnauthorized(err):
		return "missing IAM permission: EC2 " + code
	case code != "":
		return "EC2 error " + code + ": " + err.Error()
	}
	return err.Error()
}

// lastAction remembers the pool manager's last action for /v1/pool.
type lastAction struct {
	mu   sync.Mutex
	what string
	at   time.Time
}

func (l *lastAction) set(what string, at time.Time) {
	l.mu.Lock()
	l.what, l.at = what, at
	l.mu.Unlock()
}

func (l *lastAction) get() (string, time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.what, l.at
}
