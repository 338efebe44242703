package ipamd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
)

// ErrNotInitialised is returned while Init has not completed.
var ErrNotInitialised = errors.New("ipamd: node not initialised yet")

// Init learns the instance, programs host networking, loads every managed
// ENI with EC2's view of its addresses, restores the checkpoint and marks
// the node ready. It is the upstream nodeInit, minus the parts that belong
// to the pool manager (which Run starts right after).
func (n *IPAM) Init(ctx context.Context) (err error) {
	defer n.observe.inProgress(fnNodeInit)()
	start := time.Now()
	defer func() {
		n.metrics.NodeInitDuration.WithLabelValues(strconv.FormatBool(err == nil)).Observe(time.Since(start).Seconds())
		if err != nil {
			n.metrics.IPAMDErrors.WithLabelValues(fnNodeInit).Inc()
		}
	}()
	id, err := n.md.Identity(ctx)
	if err != nil {
		return fmt.Errorf("ipamd init: reading instance identity: %w", err)
	}
	n.node.id = id
	mds, err := n.md.ENIs(ctx)
	if err != nil {
		return fmt.Errorf("ipamd init: reading ENIs from instance metadata: %w", err)
	}
	typ := awsutils.InstanceTypeInfo{Type: id.InstanceType}
	var attached []awsutils.ENI // EC2's description of the attached ENIs, reused below
	if n.cfg.IMDSOnlyMode {
		// No EC2 at all: the node's facts come from its primary ENI's metadata.
		for _, m := range mds {
			if m.MAC == id.PrimaryMAC {
				n.node.subnetID, n.node.vpcID, n.node.primaryENI = m.SubnetID, m.VPCID, m.ENIID
				n.node.sgs.set(m.SecurityGroups)
			}
		}
	} else {
		if typ, err = n.ec2.InstanceType(ctx, id.InstanceType); err != nil {
			return fmt.Errorf("ipamd init: limits of instance type %s: %w", id.InstanceType, err)
		}
		// The attached ENIs say all ipamd needs of the instance: no
		// DescribeInstances besides.
		if attached, err = n.ec2.InstanceENIs(ctx, id.InstanceID); err != nil {
			return fmt.Errorf("ipamd init: %w", err)
		}
		primary, ok := primaryENI(attached)
		if !ok {
			return fmt.Errorf("ipamd init: EC2 lists no ENI at device 0 of network card 0 on instance %s", id.InstanceID)
		}
		n.node.subnetID, n.node.vpcID, n.node.primaryENI = primary.SubnetID, primary.VPCID, primary.ID
		n.node.sgs.set(primary.SecurityGroups)
	}
	n.node.typ = typ
	subnetCIDRs := map[string]netip.Prefix{}
	for _, m := range mds {
		if m.SubnetIPv4CIDR.IsValid() {
			subnetCIDRs[m.SubnetID] = m.SubnetIPv4CIDR
		}
		if m.MAC == id.PrimaryMAC {
			n.node.vpcCIDRs.set(m.VPCIPv4CIDRs)
			n.node.vpcV6CIDRs = m.VPCIPv6CIDRs
			n.node.subnetCIDR = m.SubnetIPv4CIDR
			if len(m.SecurityGroups) > 0 {
				n.node.sgs.set(m.SecurityGroups)
			}
		}
	}
	if n.cfg.EnableIPv6 && len(n.node.vpcV6CIDRs) == 0 {
		return fmt.Errorf("ipamd init: ENABLE_IPv6=true but instance metadata lists no VPC IPv6 CIDR for the primary MAC %s", id.PrimaryMAC)
	}
	if !n.cfg.EnableIPv6 && len(n.node.vpcCIDRs.get()) == 0 {
		return fmt.Errorf("ipamd init: instance metadata lists no VPC IPv4 CIDR for the primary MAC %s", id.PrimaryMAC)
	}

	n.node.pd = n.cfg.EnablePrefixDelegation
	if n.cfg.EnableIPv6 && !typ.PrefixDelegationSupported() && !n.cfg.IMDSOnlyMode {
		return fmt.Errorf("ipamd init: ENABLE_IPv6=true needs IPv6 prefixes, which instance type %s (hypervisor %s) does not support",
			typ.Type, typ.Hypervisor)
	}
	if n.node.pd && !typ.PrefixDelegationSupported() {
		n.log.Warn("ENABLE_PREFIX_DELEGATION=true but the instance type supports no prefixes (not Nitro, not bare metal): using secondary IPs",
			"instanceType", typ.Type, "hypervisor", typ.Hypervisor)
		n.node.pd = false
	}
	n.node.maxPods.set(maxPods(ctx, n.cfg, n.kube.get(), typ, n.log))

	if err := n.hostSync.program(ctx); err != nil {
		return err
	}
	if err := n.leaked.atStart(ctx); err != nil {
		// Not fatal: the periodic sweep retries.
		n.log.Warn("could not sweep unattached ENIs at start", "err", err)
	}

	enis, err := n.adopt.attached(ctx, mds, attached)
	if err != nil {
		return fmt.Errorf("ipamd init: %w", err)
	}
	if err := n.cards.build(n.cfg, n.node, n.poolEnv, n.cpHealth, n.track, n.log); err != nil {
		return err
	}
	if n.cfg.EnableSubnetDiscovery && !n.cfg.IMDSOnlyMode {
		subs, err := n.subs.Subnets(ctx, n.node.vpcID, id.AZ)
		if err != nil {
			n.log.Warn("subnet discovery: cannot list subnets; no ENI is excluded", "err", err)
		} else if _, err := n.subnets.remember(subs); err != nil {
			n.log.Warn("subnet discovery: no subnet for new ENIs yet", "err", err)
		}
		for _, sn := range subs {
			subnetCIDRs[sn.ID] = sn.CIDR
			if awsutils.SubnetExcluded(sn, n.cfg.ClusterName) {
				n.node.excluded[sn.ID] = true
			}
		}
	}
	for _, e := range enis {
		if err := n.adopt.adopt(ctx, e, subnetCIDRs); err != nil {
			return fmt.Errorf("ipamd init: %w", err)
		}
	}
	if err := n.restore.restoreAll(ctx, n.orphans.liveness(ctx)); err != nil {
		return fmt.Errorf("ipamd init: %w", err)
	}
	n.observe.limits()
	n.observe.pool()
	n.ready.set()
	n.log.Info("node initialised", "instance", id.InstanceID, "type", typ.Type, "maxENIs", typ.MaxENIs,
		"ipv4PerENI", typ.IPv4PerENI, "prefixDelegation", n.node.pd, "maxPods", n.node.maxPods.get())
	return nil
}

// maxPods: the test override, else the node's capacity from the API
// server, else upstream's eni-max-pods formula for the instance type.
func maxPods(ctx context.Context, cfg config.Config, k Kubernetes, t awsutils.InstanceTypeInfo, log *slog.Logger) int {
	if cfg.MaxPodsOverride > 0 {
		return cfg.MaxPodsOverride
	}
	if m, err := k.MaxPods(ctx); err == nil && m > 0 {
		return m
	} else if err != nil {
		log.Warn("could not read the node's pod capacity; using the instance type's", "err", err)
	}
	if t.MaxENIs > 0 && t.IPv4PerENI > 1 {
		return t.MaxENIs*(t.IPv4PerENI-1) + 2
	}
	return 110
}

// primaryENI is the ENI at device 0 of network card 0.
func primaryENI(enis []awsutils.ENI) (awsutils.ENI, bool) {
	for _, e := range enis {
		if e.Attachment != nil && e.Attachment.DeviceIndex == 0 && e.Attachment.NetworkCard == 0 {
			return e, true
		}
	}
	return awsutils.ENI{}, false
}
