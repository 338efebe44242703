package ipamd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
)

// Reconcile compares the datastores with instance metadata and, only when
// they disagree, with EC2, which is the source of truth (IMDS lags EC2 by
// seconds; upstream #1967 deleted an in-use ENI because it trusted IMDS).
// It adopts attached ENIs and addresses the store lacks, drops ENIs EC2
// says are detached, and drops addresses EC2 no longer lists, except
// addresses a pod holds: those are kept and reported, never silently
// taken from a live pod. A CIDR released less than the grace period ago is
// ignored either way (metadata still lists it).
func (n *IPAM) Reconcile(ctx context.Context) (err error) {
	if !n.ready.isSet() {
		return nil
	}
	n.changes.Lock()
	defer n.changes.Unlock()
	defer n.observe.inProgress(fnReconcile)()
	defer func() {
		if err != nil {
			n.metrics.IPAMDErrors.WithLabelValues(fnReconcile).Inc()
		}
		n.observe.pool()
	}()
	now := time.Now()
	n.book.forgetReleased(now, n.times.ReleasedGrace)

	mds, err := n.md.ENIs(ctx)
	if err != nil {
		return fmt.Errorf("reconcile: reading instance metadata: %w", err)
	}
	if n.agreesWith(mds) {
		return nil
	}
	enis, err := n.attachedENIs(ctx, mds, nil)
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
		if e.Attachment != nil && e.Attachment.InstanceID == n.node.id.InstanceID {
			attached[e.ID] = e
		}
	}
	var errs []error
	for _, e := range enis {
		if _, ok := attached[e.ID]; !ok || n.book.isIgnored(e.ID) {
			continue
		}
		c := n.cardOf(e.Attachment.NetworkCard)
		if c == nil {
			continue
		}
		if c.isUnmanaged(e.ID) {
			continue
		}
		if _, known := c.store.ENI(e.ID); !known {
			n.log.Info("reconcile: adopting an attached ENI the datastore lacks", "eni", e.ID)
			n.metrics.Reconciles.WithLabelValues(reconcileENIAdd).Inc()
			errs = append(errs, n.adoptENI(ctx, e, subnetCIDRs))
			continue
		}
		errs = append(errs, n.reconcileCIDRs(c, e))
	}
	for _, c := range n.cards {
		for _, info := range c.store.ENIs() {
			if _, ok := attached[info.ID]; ok || now.Sub(info.CreatedAt) < n.times.ReleasedGrace {
				continue
			}
			evicted, err := c.store.RemoveENI(info.ID, true)
			if err != nil {
				errs = append(errs, err)
				if !errors.Is(err, datastore.ErrCheckpoint) {
					continue
				} // else: removed, only not persisted; tear down as well
			}
			n.log.Warn("reconcile: EC2 says the ENI is no longer attached; removed", "eni", info.ID,
				"podsThatLostTheirAddress", len(evicted))
			n.metrics.Reconciles.WithLabelValues(reconcileENIDel).Inc()
			if len(evicted) > 0 {
				n.metrics.ForceRemovedENIs.Inc()
				n.metrics.ForceRemovedIPs.Add(float64(len(evicted)))
			}
			n.teardownRemovedENI(ctx, info, evicted)
		}
	}
	n.handout.wake()
	return errors.Join(errs...)
}

// teardownRemovedENI removes the host state of an ENI EC2 no longer
// attaches, as freeENI does (its rule for the primary IP, its route
// table), and the ip rules of the pods that lost their address with it.
func (n *IPAM) teardownRemovedENI(ctx context.Context, info datastore.ENIInfo, evicted []datastore.Assignment) {
	defer n.book.forgetPrimaryIP(info.ID)
	if ip, ok := n.book.primaryIP(info.ID); ok && !info.IsPrimary {
		if err := n.host.TeardownENI(ctx, ip, info.RouteTableID); err != nil {
			n.log.Warn("reconcile: could not tear down host networking of a removed ENI", "eni", info.ID, "err", err)
		}
	}
	for _, a := range evicted {
		if err := n.host.DeletePodRules(ctx, a.Addr); err != nil {
			n.log.Warn("reconcile: could not delete the ip rules of an evicted pod", "ip", a.Addr, "key", a.Key.String(), "err", err)
		}
	}
}

// agreesWith reports whether instance metadata shows exactly the managed
// ENIs and CIDRs the datastores hold (just-released CIDRs aside).
func (n *IPAM) agreesWith(mds []awsutils.ENIMetadata) bool {
	seen := map[string]bool{}
	for _, m := range mds {
		if n.book.isIgnored(m.ENIID) {
			continue
		}
		c := n.cardOf(m.NetworkCard)
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
		if n.cfg.EnableIPv6 {
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
		for _, ci := range info.CIDRs {
			if ci.Prefix.Addr().Is6() != n.cfg.EnableIPv6 {
				continue
			}
			have++
			if !want[ci.Prefix] {
				return false
			}
		}
		extra := 0
		for p := range want {
			if n.book.inGrace(p) {
				extra++
			}
		}
		if len(want)-extra != have {
			return false
		}
	}
	for _, c := range n.cards {
		for _, info := range c.store.ENIs() {
			if !seen[info.ID] {
				return false
			}
		}
	}
	return true
}

// reconcileCIDRs makes the store's CIDRs of one ENI match EC2's.
func (n *IPAM) reconcileCIDRs(c *poolManager, e awsutils.ENI) error {
	info, _ := c.store.ENI(e.ID)
	ec2Has := map[netip.Prefix]bool{}
	for _, p := range podCIDRs(e, n.cfg.EnableIPv6) {
		ec2Has[p] = true
	}
	var errs []error
	for p := range ec2Has {
		if n.book.inGrace(p) {
			continue
		}
		err := c.store.AddCIDR(e.ID, p)
		switch {
		case err == nil:
			n.log.Info("reconcile: added an address EC2 lists on the ENI", "eni", e.ID, "cidr", p)
			n.metrics.Reconciles.WithLabelValues(reconcileIPAdd).Inc()
		case !errors.Is(err, datastore.ErrDuplicateCIDR):
			errs = append(errs, err)
		}
	}
	for _, ci := range info.CIDRs {
		if ec2Has[ci.Prefix] {
			continue
		}
		if ci.Assigned > 0 {
			n.log.Warn("reconcile: EC2 no longer lists an address a pod holds; keeping it for the pod", "eni", e.ID,
				"cidr", ci.Prefix, "assigned", ci.Assigned)
			continue
		}
		_, err := c.store.RemoveCIDR(e.ID, ci.Prefix, false)
		if err != nil && !errors.Is(err, datastore.ErrCheckpoint) {
			if !errors.Is(err, datastore.ErrCIDRInUse) { // a pod took it since the snapshot: kept
				errs = append(errs, err)
			}
			continue
		}
		errs = append(errs, err) // nil, or removed but not persisted
		n.log.Info("reconcile: removed an address EC2 no longer lists", "eni", e.ID, "cidr", ci.Prefix)
		n.metrics.Reconciles.WithLabelValues(reconcileIPDel).Inc()
	}
	return errors.Join(errs...)
}
