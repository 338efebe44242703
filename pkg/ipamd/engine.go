package ipamd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/pool"
)

// maxStepsPerCycle bounds the actions of one pool cycle per card, so a
// misbehaving EC2 cannot keep the manager in one cycle forever.
const maxStepsPerCycle = 16

// PoolCycle plans and executes actions on every card until each is at its
// targets (or blocked). It is what the pool manager runs on every tick and
// on demand; tests call it directly.
func (n *IPAM) PoolCycle(ctx context.Context) {
	if !n.ready.isSet() {
		return
	}
	n.changes.Lock()
	defer n.changes.Unlock()
	defer n.observe.pool()
	schedulable := n.schedulable(ctx)
	if schedulable && !n.terminating.isSet() && !n.cfg.DisableProvisioning {
		n.features.declareCustomNetworking(ctx)
		n.features.declareSGPP(ctx)
	}
	if !n.cfg.DisableProvisioning {
		n.retryDeleteOnTermination(ctx)
		for _, c := range n.cards {
			n.retryUnfreed(ctx, c)
		}
	}
	for _, c := range n.cards {
		if n.cfg.EnableIPv6 {
			// No warm pool in IPv6 mode: each ENI's /80 serves every pod.
			if schedulable && !n.terminating.isSet() && !c.backingOff() {
				n.ensureIPv6Prefixes(ctx, c)
			}
			continue
		}
		n.cardCycle(ctx, c, schedulable)
	}
	if n.handout.waiting() > 0 && n.atHardLimit() {
		// Waiting ADDs learn at once that no refill can come.
		n.handout.limited.broadcast()
	}
}

// limitText names card c's hard limit ("" when it can still grow): the
// instance type, its ENIs × addresses, or max pods.
func (n *IPAM) limitText(c *card, view pool.Pool, p pool.Params) string {
	l, ok := pool.AtHardLimit(view, p)
	if !ok {
		return ""
	}
	if l.MaxPods {
		return fmt.Sprintf("card %d holds %d addresses, the node's max pods (%d)", c.index, l.Total, p.MaxPods)
	}
	unit := "secondary IPv4 addresses"
	if p.PrefixDelegation {
		unit = "/28 prefixes"
	}
	s := fmt.Sprintf("%s card %d takes %d ENIs × %d %s", n.node.typ.Type, c.index, l.ENIs, l.Slots, unit)
	if n.cfg.MaxENI >= 1 && n.cfg.MaxENI == l.ENIs {
		s += fmt.Sprintf(" (MAX_ENI=%d)", n.cfg.MaxENI)
	}
	if view.Unmanaged > 0 {
		s += fmt.Sprintf(", %d of the ENIs unmanaged", view.Unmanaged)
	}
	if p.ReserveTrunk && !view.Stats(p.PrefixDelegation).HasTrunk {
		s += ", one ENI slot reserved for the trunk ENI"
	}
	return s + fmt.Sprintf(": every ENI attached and full, %d pod addresses", l.Total)
}

// atHardLimit reports whether every card is at its hard limit.
func (n *IPAM) atHardLimit() bool {
	for _, c := range n.cards {
		if c.fullText() == "" {
			return false
		}
	}
	return len(n.cards) > 0
}

// ensureIPv6Prefixes gives every ENI of card c its /80; a failure backs
// off like a failed IPv4 pool action.
func (n *IPAM) ensureIPv6Prefixes(ctx context.Context, c *card) {
	for _, e := range c.store.ENIs() {
		if err := n.ensureIPv6Prefix(ctx, c, e.ID); err != nil {
			n.log.Warn("could not give an ENI its IPv6 prefix", "card", c.index, "eni", e.ID, "err", err,
				"ec2Code", awsutils.Code(err))
			c.setState(causeOf(err), err)
			c.backOff(err)
			return
		}
	}
	c.setState("", nil)
	c.clearBackoff()
}

func (n *IPAM) schedulable(ctx context.Context) bool {
	if n.cfg.ManageENIsNonSchedulable {
		return true
	}
	ok, err := n.kube.get().NodeSchedulable(ctx)
	if err != nil {
		n.log.Warn("could not read the node's taints; assuming schedulable", "err", err)
		return true
	}
	return ok
}

// params builds the planner's input for card c now.
func (n *IPAM) params(c *card, schedulable, released, freed bool) pool.Params {
	now := time.Now()
	g := c.gates()
	insufficient, lastRelease, code, retryAt, lastErr := g.insufficient, g.lastRelease, g.insuffCode, g.retryAt, g.lastErr
	provisioning := !n.cfg.DisableProvisioning && !n.terminating.isSet() && schedulable && !now.Before(retryAt)
	p := pool.Params{
		WarmENI: n.cfg.WarmENITarget, WarmIP: n.cfg.WarmIPTarget, MinimumIP: n.cfg.MinimumIPTarget,
		WarmPrefix: n.cfg.WarmPrefixTarget, PrefixDelegation: g.prefixes,
		MaxENIs: c.maxENIs, IPv4PerENI: n.node.typ.IPv4PerENI, MaxPods: n.node.maxPods.get(),
		CustomNetworking: n.cfg.CustomNetworking,
		ReserveTrunk:     n.features.sgppPossible() && n.node.typ.Type != "" && c.index == 0,
		Pending:          n.handout.waiting(),
		CanAllocate:      provisioning && !now.Before(insufficient),
		CanRelease:       provisioning && !released && now.Sub(lastRelease) >= n.times.ReleaseSpacing,
		CanFreeENI:       provisioning && !freed,
		MinENIAge:        n.times.MinENIAge,
		Now:              now,
	}
	switch {
	case n.cfg.DisableProvisioning:
		p.CooldownNote = "DISABLE_NETWORK_RESOURCE_PROVISIONING=true: ipamd never allocates addresses"
	case n.terminating.isSet():
		p.CooldownNote = "ipamd is shutting down"
	case !schedulable:
		p.CooldownNote = "node is unschedulable (AWS_MANAGE_ENIS_NON_SCHEDULABLE=false)"
	case now.Before(insufficient):
		p.CooldownNote = fmt.Sprintf("subnet full (EC2 %s); retrying after %s", code, insufficient.Format(time.RFC3339))
	case now.Before(retryAt) && lastErr != nil:
		p.CooldownNote = fmt.Sprintf("%s; retrying after %s", causeOf(lastErr), retryAt.Format(time.RFC3339Nano))
	}
	if c.index > 0 {
		p.Pending = 0 // pods spill to card > 0 only once card 0 is exhausted
	}
	if p.Pending > 0 {
		p.CoolingSoon = n.coolingWithin(c, now.Add(n.times.AttachTime))
	}
	return p
}

// coolingWithin counts card c's cooling addresses whose cooldown ends by t.
func (n *IPAM) coolingWithin(c *card, t time.Time) int {
	count := 0
	for _, e := range c.store.Snapshot() {
		for _, ci := range e.CIDRs {
			for _, cl := range ci.CoolingList {
				if !cl.UnassignedAt.Add(n.cfg.IPCooldown).After(t) {
					count++
				}
			}
		}
	}
	return count
}

func (n *IPAM) cardCycle(ctx context.Context, c *card, schedulable bool) {
	released, freed := false, false
	for range maxStepsPerCycle {
		if ctx.Err() != nil {
			return
		}
		view, p := c.view(), n.params(c, schedulable, released, freed)
		a := pool.Plan(view, p)
		if a.Kind == pool.None {
			c.setState(starvedText(a), nil)
			c.setFull(n.limitText(c, view, p))
			return
		}
		n.log.Debug("pool action", "card", c.index, "action", a.Kind.String(), "eni", a.ENI, "count", a.Count,
			"cidrs", len(a.CIDRs), "reason", a.Reason)
		done := n.observe.inProgress(actionFn(a.Kind))
		err := n.execute(ctx, c, a)
		done()
		n.observe.action(a, err)
		n.last.set(describeAction(c, a, err), time.Now())
		switch a.Kind {
		case pool.ReleaseCIDRs:
			released = true
			c.released(time.Now())
		case pool.FreeENI:
			freed = true
		}
		if err != nil {
			if awsutils.IsUnauthorized(err) {
				n.kube.get().Eventf(ctx, "Warning", "MissingIAMPermissions", "Unauthorized operation: %s", causeOf(err))
			}
			n.log.Warn("pool action failed", "card", c.index, "action", a.Kind.String(), "eni", a.ENI, "err", err,
				"ec2Code", awsutils.Code(err))
			c.setState(causeOf(err), err)
			c.setFull("")
			if !awsutils.IsInsufficientCapacity(err) {
				c.backOff(err)
			}
			return
		}
		c.clearBackoff()
		if a.Kind != pool.ReleaseCIDRs && a.Kind != pool.FreeENI {
			n.handout.wake()
		}
	}
}

// describeAction is the last-action line of /v1/pool.
func describeAction(c *card, a pool.Action, err error) string {
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

// execute performs one planned action.
func (n *IPAM) execute(ctx context.Context, c *card, a pool.Action) error {
	switch a.Kind {
	case pool.AssignIPs:
		return n.assignIPs(ctx, c, a.ENI, a.Count)
	case pool.AssignPrefixes:
		return n.assignPrefixes(ctx, c, a.ENI, a.Count)
	case pool.CreateENI:
		if a.ENIs > 1 {
			return n.createENIs(ctx, c, a.ENIs, a.Count, a.Prefixes)
		}
		return n.createENI(ctx, c, a.Count, a.Prefixes)
	case pool.ReleaseCIDRs:
		return n.releaseCIDRs(ctx, c, a.ENI, a.CIDRs)
	case pool.FreeENI:
		return n.freeENI(ctx, c, a.ENI)
	}
	return nil
}

func (n *IPAM) assignIPs(ctx context.Context, c *card, eniID string, count int) error {
	addrs, err := n.ec2.AssignIPv4(ctx, eniID, count)
	if err != nil && count > 1 && !awsutils.IsLimitExceeded(err) && !awsutils.IsThrottle(err) && ctx.Err() == nil {
		// Upstream's retry with a single address: a nearly full subnet may
		// still have one.
		addrs, err = n.ec2.AssignIPv4(ctx, eniID, 1)
	}
	if awsutils.IsLimitExceeded(err) {
		// EC2 says the ENI is already full: learn what it holds.
		return n.resyncENI(ctx, c, eniID)
	}
	if err != nil {
		c.noteInsufficient(err)
		return fmt.Errorf("assigning %d secondary IPv4 addresses to %s: %w", count, eniID, err)
	}
	var errs []error
	for _, a := range addrs {
		if err := c.store.AddCIDR(eniID, netip.PrefixFrom(a, 32)); err != nil && !errors.Is(err, datastore.ErrDuplicateCIDR) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (n *IPAM) assignPrefixes(ctx context.Context, c *card, eniID string, count int) error {
	prefixes, err := n.ec2.AssignIPv4Prefixes(ctx, eniID, count)
	if awsutils.Code(err) == awsutils.CodeInsufficientCidrBlocks {
		return n.fallbackToSecondary(c, "assigning prefixes to "+eniID)
	}
	if awsutils.IsLimitExceeded(err) {
		return n.resyncENI(ctx, c, eniID)
	}
	if err != nil {
		c.noteInsufficient(err)
		return fmt.Errorf("assigning %d IPv4 prefixes to %s: %w", count, eniID, err)
	}
	var errs []error
	for _, p := range prefixes {
		if err := c.store.AddCIDR(eniID, p); err != nil && !errors.Is(err, datastore.ErrDuplicateCIDR) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// fallbackToSecondary switches card c to /32 secondary addresses after EC2
// answered InsufficientCidrBlocks (the subnet is too fragmented for a /28):
// the next plan grows with /32s. Prefixes already held keep their pods, and
// empty ones are released by the planner's cleanup.
func (n *IPAM) fallbackToSecondary(c *card, while string) error {
	n.log.Warn("EC2 has no free /28 block in the subnet (InsufficientCidrBlocks): falling back to secondary IPs on this network card",
		"card", c.index, "while", while)
	if err := c.store.SetMode(datastore.ModeSecondaryIPv4); err != nil {
		return fmt.Errorf("falling back to secondary IPs on card %d: %w", c.index, err)
	}
	c.pd.set(false)
	return nil
}

// resyncENI adds every address EC2 lists on the ENI that the store lacks.
func (n *IPAM) resyncENI(ctx context.Context, c *card, eniID string) error {
	enis, _, err := n.ec2.DescribeENIs(ctx, []string{eniID})
	if err != nil {
		return fmt.Errorf("re-reading full ENI %s: %w", eniID, err)
	}
	for _, e := range enis {
		for _, p := range n.eniCIDRs(e) {
			if err := c.store.AddCIDR(eniID, p); err != nil && !errors.Is(err, datastore.ErrDuplicateCIDR) {
				return err
			}
		}
	}
	return nil
}

// releaseCIDRs removes unused CIDRs from the store, then gives them back
// to EC2. A CIDR a pod took meanwhile is skipped. If EC2 answers with an
// error the release may still have happened (a cancelled call EC2 applied,
// "not assigned" because it is already gone), so only what EC2 still lists
// goes back into the store.
func (n *IPAM) releaseCIDRs(ctx context.Context, c *card, eniID string, cidrs []netip.Prefix) error {
	var addrs []netip.Addr
	var prefixes []netip.Prefix
	for _, p := range cidrs {
		if _, err := c.store.RemoveCIDR(eniID, p, false); err != nil && !errors.Is(err, datastore.ErrCheckpoint) {
			if !errors.Is(err, datastore.ErrCIDRInUse) && !errors.Is(err, datastore.ErrUnknownCIDR) {
				n.log.Warn("could not take a CIDR out of the store to release it; keeping it", "eni", eniID, "cidr", p, "err", err)
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
		if err := n.ec2.UnassignIPv4(ctx, eniID, addrs); err != nil && !awsutils.IsNotFound(err) {
			callErrs = append(callErrs, fmt.Errorf("releasing %d addresses of %s: %w", len(addrs), eniID, err))
			for _, a := range addrs {
				failed = append(failed, netip.PrefixFrom(a, 32))
			}
		} else {
			for _, a := range addrs {
				n.book.noteReleased(now, netip.PrefixFrom(a, 32))
			}
		}
	}
	if len(prefixes) > 0 {
		if err := n.ec2.UnassignIPv4Prefixes(ctx, eniID, prefixes); err != nil && !awsutils.IsNotFound(err) {
			callErrs = append(callErrs, fmt.Errorf("releasing %d prefixes of %s: %w", len(prefixes), eniID, err))
			failed = append(failed, prefixes...)
		} else {
			n.book.noteReleased(now, prefixes...)
		}
	}
	if len(failed) > 0 {
		n.restoreUnreleased(ctx, c, eniID, failed)
	}
	return errors.Join(callErrs...)
}

// restoreUnreleased puts back into the store the CIDRs of a failed release
// that EC2 still lists on the ENI. If EC2 cannot be asked, none goes back:
// handing out an address EC2 released is worse than idling one, which the
// reconcile adopts again.
func (n *IPAM) restoreUnreleased(ctx context.Context, c *card, eniID string, failed []netip.Prefix) {
	// The release may have failed because ctx ended; the answer still matters.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	enis, _, err := n.ec2.DescribeENIs(dctx, []string{eniID})
	if err != nil {
		n.log.Warn("release failed and EC2 cannot say what the ENI still holds; the reconcile adopts what it lists",
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
			n.book.noteReleased(now, p) // EC2 released it after all
			continue
		}
		if err := c.store.AddCIDR(eniID, p); err != nil && !errors.Is(err, datastore.ErrDuplicateCIDR) {
			n.log.Warn("could not put back a CIDR EC2 did not release", "eni", eniID, "cidr", p, "err", err)
		}
	}
}

// freeENI removes an ENI without pods from the store, tears down its host
// networking and detaches and deletes it.
func (n *IPAM) freeENI(ctx context.Context, c *card, eniID string) error {
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
	primaryIP, _ := n.book.primaryIP(eniID)
	if err := n.host.TeardownENI(ctx, primaryIP, info.RouteTableID); err != nil {
		n.log.Warn("could not tear down host networking of a freed ENI", "eni", eniID, "err", err)
	}
	if err := n.ec2.FreeENI(ctx, eniID, n.book.attachID(eniID)); err != nil {
		// Maybe still attached: keep its slot taken until retryUnfreed
		// frees it or reconcile adopts it again.
		c.keepUnfreed(eniID, info.DeviceNumber)
		return fmt.Errorf("freeing ENI %s: %w", eniID, err)
	}
	n.book.forget(eniID)
	n.log.Info("ENI freed", "eni", eniID, "card", c.index)
	now := time.Now()
	for _, ci := range info.CIDRs {
		n.book.noteReleased(now, ci.Prefix)
	}
	return nil
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
