package ipamd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/metrics"
)

// reconciler brings the datastores in line with EC2, the source of truth
// (see reconcile), on its own period and when a waiting branch-pod ADD
// asks. It owns no state; it holds the lock that serialises what changes
// the pool in EC2.
type reconciler struct {
	cfg     config.Config
	md      Metadata
	node    *nodeState
	book    *eniBook
	adopt   *adopter
	host    HostNetwork
	cards   *cardSet // the managed cards, built by Init before it is ready
	metrics *metrics.Metrics
	observe *observer
	last    *lastAction // the pool manager's last action: reconcile only after a quiet interval
	asked   *reconcileSignal
	ready   *latch
	changes *sync.Mutex
	wake    func()        // retry the waiting AddNetwork calls (handout)
	every   time.Duration // Intervals.Reconcile
	grace   time.Duration // Intervals.ReleasedGrace
	log     *slog.Logger
}

// run reconciles every period, once the pool has been quiet that long (or
// maxReconcileGap passed), and soon after an ADD asks, until ctx ends.
func (r *reconciler) run(ctx context.Context) {
	tick := time.NewTicker(r.every)
	defer tick.Stop()
	lastReconcile := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if _, lastAction := r.last.get(); !reconcileDue(now, lastAction, lastReconcile, r.every) {
				continue
			}
		case <-r.asked.kick:
			// An ADD waits for what only EC2 can tell (trunkwait.go).
			if wait := reconcileGap - time.Since(lastReconcile); wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		lastReconcile = time.Now()
		if err := r.reconcile(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("reconcile failed", "err", err)
		}
		r.asked.finished()
	}
}

// maxReconcileGap bounds how long constant pool activity can postpone a
// reconcile.
const maxReconcileGap = 5 * time.Minute

// reconcileDue: upstream reconciles only after a quiet interval (metadata
// lags right after our own changes, and EC2 calls are dear), but under
// constant churn that would be never, so at least every maxReconcileGap.
func reconcileDue(now, lastAction, lastReconcile time.Time, interval time.Duration) bool {
	return now.Sub(lastAction) >= interval || now.Sub(lastReconcile) >= maxReconcileGap
}

// reconcile compares the datastores with instance metadata and, only when
// they disagree, with EC2, which is the source of truth (IMDS lags EC2 by
// seconds; upstream #1967 deleted an in-use ENI because it trusted IMDS).
// It adopts attached ENIs and addresses the store lacks, drops ENIs EC2
// says are detached, and drops addresses EC2 no longer lists. A pod
// holding one keeps it, quarantined: no other pod gets the address until
// that pod's DEL (datastore quarantine.go). A CIDR released less than the
// grace period ago is ignored either way (metadata still lists it).
func (r *reconciler) reconcile(ctx context.Context) (err error) {
	if !r.ready.isSet() {
		return nil
	}
	r.changes.Lock()
	defer r.changes.Unlock()
	defer r.observe.inProgress(fnReconcile)()
	// awscni_ipamd_error_count counts the steps upstream counts, under
	// its names; a failed EC2 read upstream only logs.
	defer r.observe.pool()
	now := time.Now()
	r.book.forgetReleased(now, r.grace)
	// Local only, no EC2 call: an address one card keeps from its new
	// pods for another card's quarantined pod cools once that pod's DEL
	// has landed (datastore othercards.go).
	r.cards.settlePending(r.log, false)
	for _, c := range r.cards.all() {
		rewireReadopted(ctx, c, r.host, r.log)
	}

	mds, err := r.md.ENIs(ctx)
	if err != nil {
		r.metrics.IPAMDErrors.WithLabelValues(errReconcileRead).Inc()
		return fmt.Errorf("reconcile: reading instance metadata: %w", err)
	}
	if r.agreesWith(mds) {
		return nil
	}
	enis, err := r.adopt.attached(ctx, mds, nil)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	subnetCIDRs := map[string]netip.Prefix{}
	for _, m := range mds {
		if m.SubnetIPv4CIDR.IsValid() {
			subnetCIDRs[m.SubnetID] = m.SubnetIPv4CIDR
		}
	}
	attached := map[string]awsutils.ENI{}
	for _, e := range enis {
		if e.Attachment != nil && e.Attachment.InstanceID == r.node.id.InstanceID {
			attached[e.ID] = e
		}
	}
	for _, c := range r.cards.all() {
		for _, id := range c.dropUnmanagedGone(attached) {
			r.log.Info("reconcile: an unmanaged ENI is no longer attached; its ENI slot is free again", "eni", id, "card", c.index)
		}
	}
	var errs []error
	for _, e := range enis {
		if _, ok := attached[e.ID]; !ok || r.book.isIgnored(e.ID) {
			continue
		}
		c := r.cards.of(e.Attachment.NetworkCard)
		if c == nil {
			continue
		}
		if c.isUnmanaged(e.ID) {
			continue
		}
		if _, known := c.store.ENI(e.ID); !known {
			r.log.Info("reconcile: adopting an attached ENI the datastore lacks", "eni", e.ID)
			r.metrics.Reconciles.WithLabelValues(reconcileENIAdd).Inc()
			if err := r.adopt.adopt(ctx, e, subnetCIDRs); err != nil {
				r.metrics.IPAMDErrors.WithLabelValues(reconcileENIAdd).Inc()
				errs = append(errs, err)
			}
			continue
		}
		errs = append(errs, r.reconcileCIDRs(c, e))
	}
	for _, c := range r.cards.all() {
		for _, info := range c.store.ENIs() {
			if _, ok := attached[info.ID]; ok || now.Sub(info.CreatedAt) < r.grace {
				continue
			}
			evicted, err := c.store.RemoveENI(info.ID, true)
			if err != nil {
				r.metrics.IPAMDErrors.WithLabelValues(reconcileENIDel).Inc()
				errs = append(errs, err)
				if !errors.Is(err, datastore.ErrCheckpoint) {
					continue
				} // else: removed, only not persisted; tear down as well
			}
			r.log.Warn("reconcile: EC2 says the ENI is no longer attached; removed. Its pods keep their addresses, "+
				"given to no other pod until their DEL", "eni", info.ID, "podsThatLostTheirAddress", len(evicted))
			r.metrics.Reconciles.WithLabelValues(reconcileENIDel).Inc()
			if len(evicted) > 0 {
				r.metrics.ForceRemovedENIs.Inc()
				r.metrics.ForceRemovedIPs.Add(float64(len(evicted)))
			}
			r.teardownRemovedENI(ctx, info, evicted)
		}
		rewireReadopted(ctx, c, r.host, r.log)
	}
	r.wake()
	return errors.Join(errs...)
}

// teardownRemovedENI removes the host state of an ENI EC2 no longer
// attaches, as freeENI does (its rule for the primary IP, its route
// table), and the ip rules of the pods that lost their address with it.
func (r *reconciler) teardownRemovedENI(ctx context.Context, info datastore.ENIInfo, evicted []datastore.Assignment) {
	defer r.book.forgetPrimaryIP(info.ID)
	if ip, ok := r.book.primaryIP(info.ID); ok && !info.IsPrimary {
		if err := r.host.TeardownENI(ctx, ip, info.RouteTableID); err != nil {
			r.log.Warn("reconcile: could not tear down host networking of a removed ENI", "eni", info.ID, "err", err)
		}
	}
	for _, a := range evicted {
		if err := r.host.DeletePodRules(ctx, a.Addr); err != nil {
			r.log.Warn("reconcile: could not delete the ip rules of an evicted pod", "ip", a.Addr, "key", a.Key.String(), "err", err)
		}
	}
}

// agreesWith reports whether instance metadata shows exactly the managed
// ENIs and CIDRs the datastores hold (just-released CIDRs aside).
func (r *reconciler) agreesWith(mds []awsutils.ENIMetadata) bool {
	seen, listed := map[string]bool{}, map[string]bool{}
	for _, m := range mds {
		listed[m.ENIID] = true
		if r.book.isIgnored(m.ENIID) {
			continue
		}
		c := r.cards.of(m.NetworkCard)
		if c == nil {
			return false // a card we have not looked at: let EC2 decide
		}
		if c.isUnmanaged(m.ENIID) {
			continue
		}
		info, ok := c.store.ENI(m.ENIID)
		if !ok {
			return false
		}
		seen[m.ENIID] = true
		if info.IsTrunk {
			continue
		}
		want := map[netip.Prefix]bool{}
		if r.cfg.EnableIPv6 {
			if len(m.IPv6Prefixes) > 0 {
				want[m.IPv6Prefixes[0]] = true
			}
		} else {
			for i, a := range m.IPv4s {
				if i > 0 {
					want[netip.PrefixFrom(a, 32)] = true
				}
			}
			for _, p := range m.IPv4Prefixes {
				want[p] = true
			}
		}
		have := 0
		held := map[netip.Prefix]bool{}
		for _, ci := range info.CIDRs {
			if ci.Prefix.Addr().Is6() != r.cfg.EnableIPv6 {
				continue
			}
			have++
			held[ci.Prefix] = true
			if !want[ci.Prefix] {
				return false
			}
		}
		extra := 0
		for p := range want {
			// A CIDR the card refuses for another card's quarantined
			// pod stays refused until that pod's DEL, whatever EC2
			// says: asking it at every reconcile changes nothing.
			if r.book.inGrace(p) || (!held[p] && r.cards.refuses(c, p, r.log)) {
				extra++
			}
		}
		if len(want)-extra != have {
			return false
		}
	}
	for _, c := range r.cards.all() {
		for _, info := range c.store.ENIs() {
			if !seen[info.ID] {
				return false
			}
		}
		for _, id := range c.unmanagedIDs() {
			if !listed[id] {
				return false // gone: EC2 says whether its slot is free
			}
		}
	}
	return true
}

// dropUnmanagedGone forgets the unmanaged ENIs of the card that are no
// longer attached (their owner detached them), so their ENI slots and
// device indexes serve the pool again, and returns their ids.
func (c *poolManager) dropUnmanagedGone(attached map[string]awsutils.ENI) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var gone []string
	for id := range c.unmanaged {
		if _, ok := attached[id]; !ok {
			delete(c.unmanaged, id)
			gone = append(gone, id)
		}
	}
	return gone
}

// reconcileCIDRs makes the store's CIDRs of one ENI match EC2's.
func (r *reconciler) reconcileCIDRs(c *poolManager, e awsutils.ENI) error {
	info, _ := c.store.ENI(e.ID)
	ec2Has := map[netip.Prefix]bool{}
	for _, p := range podCIDRs(e, r.cfg.EnableIPv6, r.cfg.CustomNetworking && e.ID == r.node.primaryENI) {
		ec2Has[p] = true
	}
	var errs []error
	for p := range ec2Has {
		if r.book.inGrace(p) {
			continue
		}
		err := c.store.AddCIDR(e.ID, p)
		switch {
		case err == nil:
			r.log.Info("reconcile: added an address EC2 lists on the ENI", "eni", e.ID, "cidr", p)
			r.metrics.Reconciles.WithLabelValues(reconcileIPAdd).Inc()
		case !errors.Is(err, datastore.ErrDuplicateCIDR):
			r.metrics.IPAMDErrors.WithLabelValues(cidrReconcileAddFn(p)).Inc()
			errs = append(errs, err)
		}
	}
	for _, ci := range info.CIDRs {
		if ec2Has[ci.Prefix] {
			continue
		}
		// Its pods keep their addresses, quarantined (datastore
		// quarantine.go), and their rules: kept in the CIDR, an address
		// would be handed out again once its pod's DEL released it,
		// though it is no longer the node's.
		evicted, err := c.store.RemoveCIDR(e.ID, ci.Prefix, true)
		if err != nil {
			r.metrics.IPAMDErrors.WithLabelValues(reconcileIPDelErr).Inc()
		}
		if err != nil && !errors.Is(err, datastore.ErrCheckpoint) {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, err) // nil, or removed but not persisted
		if len(evicted) > 0 {
			r.log.Warn("reconcile: EC2 no longer lists an address pods hold; removed, the pods keep their addresses, given to no other pod until their DEL",
				"eni", e.ID, "cidr", ci.Prefix, "pods", len(evicted))
			r.metrics.ForceRemovedIPs.Add(float64(len(evicted)))
		} else {
			r.log.Info("reconcile: removed an address EC2 no longer lists", "eni", e.ID, "cidr", ci.Prefix)
		}
		r.metrics.Reconciles.WithLabelValues(reconcileIPDel).Inc()
	}
	return errors.Join(errs...)
}
