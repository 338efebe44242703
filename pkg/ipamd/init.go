package ipamd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
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
	n.node.maxPods.set(n.maxPods(ctx))

	if err := n.reconcileHost(ctx); err != nil {
		return err
	}
	if err := n.leaked.atStart(ctx); err != nil {
		// Not fatal: the periodic sweep retries.
		n.log.Warn("could not sweep unattached ENIs at start", "err", err)
	}

	enis, err := n.attachedENIs(ctx, mds, attached)
	if err != nil {
		return fmt.Errorf("ipamd init: %w", err)
	}
	if err := n.buildCards(); err != nil {
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
		if err := n.adoptENI(ctx, e, subnetCIDRs); err != nil {
			return fmt.Errorf("ipamd init: %w", err)
		}
	}
	live := n.orphans.liveness(ctx)
	for _, c := range n.cards {
		res, err := n.restore.restoreCard(ctx, c, live)
		if err != nil {
			return fmt.Errorf("ipamd init: restoring the checkpoint of network card %d: %w", c.index, err)
		}
		n.log.Info("checkpoint restored", "card", c.index, "restored", len(res.Restored),
			"stale", len(res.Stale), "unknownCIDR", len(res.Unknown), "keyLess", len(res.KeyLess), "clampedTimestamps", res.Clamped)
		for _, a := range res.KeyLess {
			n.metrics.RestoreDropped.WithLabelValues("key_less").Inc()
			n.log.Warn("dropped a checkpoint allocation with an empty key field (no DEL could ever release it)",
				"card", c.index, "key", a.Key.String(), "ip", a.Addr, "pod", a.Meta.K8sPodNamespace+"/"+a.Meta.K8sPodName)
		}
		if res.Clamped > 0 {
			n.log.Warn("checkpoint timestamps in the future set to now", "card", c.index, "count", res.Clamped)
		}
		if len(res.Unknown) > 0 {
			n.log.Warn("restored allocations on no known CIDR: kept pending until their CIDR appears or the wait ends",
				"card", c.index, "count", len(res.Unknown), "first", allocationList(res.Unknown, 20), "wait", n.times.PendingWait)
		}
		for _, a := range res.Restored {
			n.restorePodRule(ctx, c, a)
		}
		for _, a := range res.Stale {
			if err := n.host.DeletePodRules(ctx, a.Addr); err != nil {
				n.log.Warn("could not delete the ip rules of a stale pod", "ip", a.Addr, "err", err)
			}
		}
	}
	n.observe.limits()
	n.observe.pool()
	n.ready.set()
	n.log.Info("node initialised", "instance", id.InstanceID, "type", typ.Type, "maxENIs", typ.MaxENIs,
		"ipv4PerENI", typ.IPv4PerENI, "prefixDelegation", n.node.pd, "maxPods", n.node.maxPods.get())
	return nil
}

// restorePodRule re-creates a restored pod's from-pod rule to its ENI's
// table (docs/compatibility.md, "Rule priorities, route tables and gateways": a restart may follow a reboot or a flush of the
// rules). Pods on the primary ENI use the main table and have none.
func (n *IPAM) restorePodRule(ctx context.Context, c *poolManager, a datastore.Allocation) {
	asg, ok := c.store.Lookup(a.Key)
	if !ok || asg.RouteTableID == hostcontract.MainTable {
		return
	}
	if err := n.host.RestorePodRule(ctx, a.Addr, asg.RouteTableID); err != nil {
		n.log.Warn("could not restore the ip rule of a restored pod", "ip", a.Addr, "table", asg.RouteTableID, "err", err)
	}
}

// maxPods: the test override, else the node's capacity from the API
// server, else upstream's eni-max-pods formula for the instance type.
func (n *IPAM) maxPods(ctx context.Context) int {
	if n.cfg.MaxPodsOverride > 0 {
		return n.cfg.MaxPodsOverride
	}
	if m, err := n.kube.get().MaxPods(ctx); err == nil && m > 0 {
		return m
	} else if err != nil {
		n.log.Warn("could not read the node's pod capacity; using the instance type's", "err", err)
	}
	t := n.node.typ
	if t.MaxENIs > 0 && t.IPv4PerENI > 1 {
		return t.MaxENIs*(t.IPv4PerENI-1) + 2
	}
	return 110
}

func (n *IPAM) reconcileHost(ctx context.Context) error {
	mac, err := net.ParseMAC(n.node.id.PrimaryMAC)
	if err != nil {
		return fmt.Errorf("ipamd init: primary MAC %q: %w", n.node.id.PrimaryMAC, err)
	}
	v6Egress := n.cfg.EnableV6Egress && !n.cfg.EnableIPv6
	if v6Egress && !n.node.id.PrimaryIPv6.IsValid() {
		n.log.Warn("ENABLE_V6_EGRESS=true but the node has no IPv6 address in instance metadata: IPv6 egress disabled")
		v6Egress = false
	}
	res, err := n.host.ReconcileHost(ctx, networkutils.HostConfig{
		PrimaryMAC:           mac,
		PrimaryIPv4:          n.node.id.LocalIPv4,
		VPCCIDRs:             n.node.vpcCIDRs.get(),
		ExcludeSNATCIDRs:     n.cfg.ExcludeSNATCIDRs,
		ExternalSNAT:         n.cfg.ExternalSNAT,
		RandomizeSNAT:        networkutils.RandomizeSNAT(n.cfg.RandomizeSNAT),
		VethPrefix:           n.cfg.VethPrefix,
		ENIMTU:               n.cfg.ENIMTU,
		NodePortSupport:      n.cfg.NodePortSupport,
		Connmark:             n.cfg.Connmark,
		ExternalServiceCIDRs: n.cfg.ExternalServiceCIDRs,
		PodENIStrict:         n.cfg.EnablePodENI && n.cfg.PodSGEnforcingMode == "strict",
		V6Egress:             v6Egress,
		IPv6:                 n.cfg.EnableIPv6,
	})
	n.observe.host(res, err)
	if err != nil {
		return fmt.Errorf("ipamd init: host networking: %w", err)
	}
	if len(res.Changes) > 0 {
		n.log.Info("host networking programmed", "changes", len(res.Changes), "backend", res.Backend)
	}
	return nil
}

// buildCards creates one datastore per managed network card.
func (n *IPAM) buildCards() error {
	cards := []int{0}
	if n.cfg.EnableMultiNIC {
		for _, c := range n.node.typ.NetworkCards {
			if c.Index != 0 {
				cards = append(cards, c.Index)
			}
		}
	}
	mode := datastore.ModeSecondaryIPv4
	switch {
	case n.cfg.EnableIPv6:
		mode = datastore.ModeIPv6
	case n.node.pd:
		mode = datastore.ModePrefixIPv4
	}
	for _, idx := range cards {
		ckpt := datastore.NewLogCheckpointer(datastore.CheckpointPath(n.cfg.BackingStore, idx))
		ckpt.Log = n.log.With("component", "checkpoint", "card", idx)
		n.ckpts = append(n.ckpts, ckpt)
		st, err := datastore.New(datastore.Options{
			Mode:           mode,
			CooldownPeriod: n.cfg.IPCooldown,
			Checkpointer:   watchedCheckpointer{Checkpointer: ckpt, card: idx, health: n.cpHealth},
		})
		if err != nil {
			return fmt.Errorf("ipamd init: datastore of card %d: %w", idx, err)
		}
		maxENIs := n.node.typ.MaxENIs
		for _, c := range n.node.typ.NetworkCards {
			if c.Index == idx && c.MaxENIs > 0 {
				maxENIs = c.MaxENIs
			}
		}
		if n.cfg.MaxENI >= 1 && n.cfg.MaxENI < maxENIs {
			maxENIs = n.cfg.MaxENI
		}
		n.cards = append(n.cards, newPoolManager(idx, st, maxENIs, n.node.pd, n.track, n.poolEnv))
	}
	return nil
}

func (n *IPAM) cardOf(index int) *poolManager {
	for _, c := range n.cards {
		if c.index == index {
			return c
		}
	}
	return nil
}

// managed applies upstream's ENI management rules (docs/compatibility.md, "Kubernetes objects").
func (n *IPAM) managed(e awsutils.ENI) bool {
	if e.ID == n.node.primaryENI {
		return true
	}
	if e.Tags[awsutils.TagNoManage] == "true" {
		return false
	}
	if e.Tags[awsutils.TagInstanceID] == n.node.id.InstanceID {
		return true
	}
	return n.cfg.ManageUntaggedENI
}

// adoptENI brings an attached ENI (as EC2 describes it) into its card's
// datastore, wiring host networking first for secondary ENIs. ENIs that
// are unmanaged, on an unmanaged card or EFA-only are recorded and skipped.
func (n *IPAM) adoptENI(ctx context.Context, e awsutils.ENI, subnetCIDRs map[string]netip.Prefix) error {
	if e.Attachment == nil {
		return nil
	}
	c := n.cardOf(e.Attachment.NetworkCard)
	if c == nil || e.InterfaceType == "efa-only" {
		n.book.ignore(e.ID)
		if c != nil {
			c.addUnmanaged(e.ID, e.Attachment.DeviceIndex) // it still takes an ENI slot
		}
		return nil
	}
	if !n.managed(e) {
		c.addUnmanaged(e.ID, e.Attachment.DeviceIndex)
		n.log.Info("ENI is not managed", "eni", e.ID, "noManageTag", e.Tags[awsutils.TagNoManage])
		return nil
	}
	if _, ok := c.store.ENI(e.ID); ok {
		return nil
	}
	n.tagENI(ctx, e)
	primary := e.ID == n.node.primaryENI
	table := hostcontract.RouteTable(c.index, e.Attachment.DeviceIndex)
	trunk := e.InterfaceType == "trunk"
	if !primary {
		mac, err := net.ParseMAC(e.MAC)
		if err != nil {
			return fmt.Errorf("ENI %s has MAC %q: %w", e.ID, e.MAC, err)
		}
		subnet, ok := subnetCIDRs[e.SubnetID]
		if !ok {
			subnet, err = n.subnets.cidr(ctx, e.SubnetID)
			if err != nil {
				return err
			}
		}
		if err := n.host.SetupENI(ctx, networkutils.ENI{MAC: mac, PrimaryIP: e.PrivateIPv4, Subnet: subnet,
			DeviceNumber: e.Attachment.DeviceIndex, NetworkCard: c.index, MTU: n.cfg.ENIMTU, Trunk: trunk}); err != nil {
			return fmt.Errorf("host networking of ENI %s: %w", e.ID, err)
		}
	}
	if err := c.store.AddENI(datastore.ENI{ID: e.ID, DeviceNumber: e.Attachment.DeviceIndex, IsPrimary: primary,
		IsTrunk: trunk, IsEFA: e.InterfaceType == "efa", RouteTableID: table, SubnetID: e.SubnetID}); err != nil {
		return err
	}
	n.book.remember(e.ID, e.PrivateIPv4, e.Attachment.ID)
	n.node.rememberMAC(e.ID, e.MAC)
	if n.node.excluded[e.SubnetID] {
		// kubernetes.io/role/cni=0 (or another cluster's subnet): no new pod
		// addresses here; the planner releases its unused ones.
		n.log.Info("ENI's subnet is excluded from pod addresses", "eni", e.ID, "subnet", e.SubnetID)
		if err := c.store.SetExcluded(e.ID, true); err != nil {
			return err
		}
	}
	if trunk {
		return nil
	}
	if !primary && e.Attachment.ID != "" && !e.Attachment.DeleteOnTermination && !n.cfg.DisableProvisioning {
		// A crash between attach and delete-on-termination leaves this unset.
		if err := n.ec2.SetDeleteOnTermination(ctx, e.ID, e.Attachment.ID); err != nil {
			n.log.Warn("could not set delete-on-termination", "eni", e.ID, "err", err)
		}
	}
	for _, p := range podCIDRs(e, n.cfg.EnableIPv6) {
		if err := c.store.AddCIDR(e.ID, p); err != nil && !errors.Is(err, datastore.ErrDuplicateCIDR) {
			return err
		}
	}
	if n.cfg.EnableIPv6 {
		return c.ensureIPv6Prefix(ctx, e.ID)
	}
	return nil
}

// attachedENIs is the instance's attached ENIs as EC2 describes them, the
// source of truth (one DescribeNetworkInterfaces, none when known already
// holds a fresh answer). In ENABLE_IMDS_ONLY_MODE they are built from
// instance metadata instead (no tags: MANAGE_UNTAGGED_ENI decides, no trunk
// or EFA detection).
func (n *IPAM) attachedENIs(ctx context.Context, mds []awsutils.ENIMetadata, known []awsutils.ENI) ([]awsutils.ENI, error) {
	if n.cfg.IMDSOnlyMode {
		out := make([]awsutils.ENI, 0, len(mds))
		for _, m := range mds {
			e := awsutils.ENI{ID: m.ENIID, MAC: m.MAC, SubnetID: m.SubnetID, VPCID: m.VPCID, InterfaceType: "interface",
				IPv4Prefixes: m.IPv4Prefixes, IPv6Prefixes: m.IPv6Prefixes, SecurityGroups: m.SecurityGroups,
				Attachment: &awsutils.Attachment{InstanceID: n.node.id.InstanceID, DeviceIndex: m.DeviceNumber,
					NetworkCard: m.NetworkCard, DeleteOnTermination: true}}
			if len(m.IPv4s) > 0 {
				e.PrivateIPv4, e.SecondaryIPv4 = m.IPv4s[0], m.IPv4s[1:]
			}
			out = append(out, e)
		}
		return out, nil
	}
	if known != nil {
		return known, nil
	}
	return n.ec2.InstanceENIs(ctx, n.node.id.InstanceID)
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

// podCIDRs lists the CIDRs of an ENI that serve pods in the node's family:
// IPv6 mode, the first IPv6 prefix (upstream uses only one); IPv4, the
// secondary addresses (as /32) and prefixes.
func podCIDRs(e awsutils.ENI, ipv6 bool) []netip.Prefix {
	if ipv6 {
		if len(e.IPv6Prefixes) > 0 {
			return e.IPv6Prefixes[:1]
		}
		return nil
	}
	return eniCIDRs(e)
}

// eniCIDRs lists an ENI's secondary IPv4 addresses (as /32) and prefixes.
func eniCIDRs(e awsutils.ENI) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(e.SecondaryIPv4)+len(e.IPv4Prefixes))
	for _, a := range e.SecondaryIPv4 {
		if a != e.PrivateIPv4 {
			out = append(out, netip.PrefixFrom(a, 32))
		}
	}
	out = append(out, e.IPv4Prefixes...)
	slices.SortFunc(out, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	return out
}
