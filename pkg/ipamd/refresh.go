package ipamd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
)

// nodeRefresher keeps the node's VPC CIDRs and security groups (held by
// nodeState) in step with instance metadata. It owns no state; it takes
// the changes lock that serialises everything that changes the pool in EC2.
type nodeRefresher struct {
	cfg           config.Config
	md            Metadata
	ec2           EC2
	node          *nodeState
	cards         *cardSet
	ready         *latch
	changes       *sync.Mutex
	reconcileHost func(context.Context) error // re-program the host's SNAT exemptions
	every         time.Duration               // NodeRefresh
	log           *slog.Logger
}

// run refreshes every NodeRefresh until ctx ends.
func (r *nodeRefresher) run(ctx context.Context) {
	every(ctx, r.every, func(ctx context.Context) {
		if err := r.RefreshNode(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("node refresh failed", "err", err)
		}
	})
}

// RefreshNode re-reads the VPC's IPv4 CIDRs and the primary ENI's security
// groups from instance metadata (upstream: every 30 s). New CIDRs re-program
// the host's SNAT exemptions and reach pods in later AddNetwork replies; new
// groups are applied to every managed secondary ENI, except with custom
// networking (the ENIConfig owns those groups) or without provisioning.
func (r *nodeRefresher) RefreshNode(ctx context.Context) error {
	if !r.ready.isSet() {
		return nil
	}
	md, err := r.md.ENI(ctx, r.node.id.PrimaryMAC)
	if err != nil {
		return fmt.Errorf("refreshing node facts: %w", err)
	}
	r.changes.Lock()
	defer r.changes.Unlock()
	var errs []error
	cidrs := slices.Clone(md.VPCIPv4CIDRs)
	slices.SortFunc(cidrs, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	old := slices.Clone(r.node.vpcCIDRs.get())
	slices.SortFunc(old, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	if len(cidrs) > 0 && !slices.Equal(cidrs, old) {
		r.node.vpcCIDRs.set(cidrs)
		r.log.Info("VPC CIDRs changed", "from", old, "to", cidrs)
		errs = append(errs, r.reconcileHost(ctx))
	}
	sgs := slices.Sorted(slices.Values(md.SecurityGroups))
	if len(sgs) > 0 && !slices.Equal(sgs, slices.Sorted(slices.Values(r.node.sgs.get()))) {
		r.node.sgs.set(sgs)
		r.log.Info("primary ENI security groups changed", "groups", sgs)
		if !r.cfg.CustomNetworking && !r.cfg.DisableProvisioning {
			for _, c := range r.cards.all() {
				for _, e := range c.store.ENIs() {
					if e.IsPrimary || e.IsTrunk {
						continue
					}
					if err := r.ec2.ModifySecurityGroups(ctx, e.ID, sgs); err != nil {
						errs = append(errs, err)
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}
