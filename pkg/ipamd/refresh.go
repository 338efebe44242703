package ipamd

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// RefreshNode re-reads the VPC's IPv4 CIDRs and the primary ENI's security
// groups from instance metadata (upstream: every 30 s). New CIDRs re-program
// the host's SNAT exemptions and reach pods in later AddNetwork replies; new
// groups are applied to every managed secondary ENI, except with custom
// networking (the ENIConfig owns those groups) or without provisioning.
func (n *IPAM) RefreshNode(ctx context.Context) error {
	if !n.ready.isSet() {
		return nil
	}
	md, err := n.md.ENI(ctx, n.node.id.PrimaryMAC)
	if err != nil {
		return fmt.Errorf("refreshing node facts: %w", err)
	}
	n.changes.Lock()
	defer n.changes.Unlock()
	var errs []error
	cidrs := slices.Clone(md.VPCIPv4CIDRs)
	slices.SortFunc(cidrs, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	old := slices.Clone(n.node.vpcCIDRs.get())
	slices.SortFunc(old, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	if len(cidrs) > 0 && !slices.Equal(cidrs, old) {
		n.node.vpcCIDRs.set(cidrs)
		n.log.Info("VPC CIDRs changed", "from", old, "to", cidrs)
		errs = append(errs, n.reconcileHost(ctx))
	}
	sgs := slices.Sorted(slices.Values(md.SecurityGroups))
	if len(sgs) > 0 && !slices.Equal(sgs, slices.Sorted(slices.Values(n.node.sgs.get()))) {
		n.node.sgs.set(sgs)
		n.log.Info("primary ENI security groups changed", "groups", sgs)
		if !n.cfg.CustomNetworking && !n.cfg.DisableProvisioning {
			for _, c := range n.cards {
				for _, e := range c.store.ENIs() {
					if e.IsPrimary || e.IsTrunk {
						continue
					}
					if err := n.ec2.ModifySecurityGroups(ctx, e.ID, sgs); err != nil {
						errs = append(errs, err)
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}
