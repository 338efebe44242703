package ipamd

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
)

// adopter brings the ENIs attached to the instance into their cards'
// datastores: at start (Init) and whenever the reconcile finds one the
// datastores lack. It decides which ENIs ipamd manages, tags them and
// wires their host networking. It owns no state: what it learns goes to
// the cards, the ENI book and the node's MACs, each the owner of its own.
type adopter struct {
	cfg     config.Config
	ec2     EC2
	host    HostNetwork
	node    *nodeState
	book    *eniBook
	subnets *subnetFinder
	cards   *cardSet // the managed cards, built by Init before any adoption
	log     *slog.Logger
}

// attached is the instance's attached ENIs as EC2 describes them, the
// source of truth (one DescribeNetworkInterfaces, none when known already
// holds a fresh answer). In ENABLE_IMDS_ONLY_MODE they are built from
// instance metadata instead (no tags: MANAGE_UNTAGGED_ENI decides, no trunk
// or EFA detection).
func (a *adopter) attached(ctx context.Context, mds []awsutils.ENIMetadata, known []awsutils.ENI) ([]awsutils.ENI, error) {
	if a.cfg.IMDSOnlyMode {
		out := make([]awsutils.ENI, 0, len(mds))
		for _, m := range mds {
			e := awsutils.ENI{ID: m.ENIID, MAC: m.MAC, SubnetID: m.SubnetID, VPCID: m.VPCID, InterfaceType: "interface",
				IPv4Prefixes: m.IPv4Prefixes, IPv6Prefixes: m.IPv6Prefixes, SecurityGroups: m.SecurityGroups,
				Attachment: &awsutils.Attachment{InstanceID: a.node.id.InstanceID, DeviceIndex: m.DeviceNumber,
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
	return a.ec2.InstanceENIs(ctx, a.node.id.InstanceID)
}

// managed applies upstream's ENI management rules (docs/compatibility.md, "Kubernetes objects").
func (a *adopter) managed(e awsutils.ENI) bool {
	if e.ID == a.node.primaryENI {
		return true
	}
	if e.Tags[awsutils.TagNoManage] == "true" {
		return false
	}
	if e.Tags[awsutils.TagInstanceID] == a.node.id.InstanceID {
		return true
	}
	return a.cfg.ManageUntaggedENI
}

// adopt brings an attached ENI (as EC2 describes it) into its card's
// datastore, wiring host networking first for secondary ENIs. ENIs that
// are unmanaged, on an unmanaged card or EFA-only are recorded and skipped.
func (a *adopter) adopt(ctx context.Context, e awsutils.ENI, subnetCIDRs map[string]netip.Prefix) error {
	if e.Attachment == nil {
		return nil
	}
	c := a.cards.of(e.Attachment.NetworkCard)
	if c == nil || e.InterfaceType == "efa-only" {
		a.book.ignore(e.ID)
		if c != nil {
			c.addUnmanaged(e.ID, e.Attachment.DeviceIndex) // it still takes an ENI slot
		}
		return nil
	}
	if !a.managed(e) {
		c.addUnmanaged(e.ID, e.Attachment.DeviceIndex)
		a.log.Info("ENI is not managed", "eni", e.ID, "noManageTag", e.Tags[awsutils.TagNoManage])
		return nil
	}
	if _, ok := c.store.ENI(e.ID); ok {
		return nil
	}
	primary := e.ID == a.node.primaryENI
	if !primary && e.InterfaceType != "trunk" && leaving(e.Attachment) {
		// A free cut short between detach and delete (ipamd killed, then
		// restarted): the ENI's addresses stop routing when the detach
		// completes, so none goes to a pod. Its slot stays taken until
		// retryUnfreed finishes the free.
		a.log.Info("ENI is detaching; finishing its free instead of adopting it", "eni", e.ID)
		c.keepUnfreed(e.ID, e.Attachment.DeviceIndex)
		return nil
	}
	a.tag(ctx, e)
	table := hostcontract.RouteTable(c.index, e.Attachment.DeviceIndex)
	trunk := e.InterfaceType == "trunk"
	hostIP := e.PrivateIPv4 // what the ENI's host networking names it by (hostAddress)
	if !primary {
		mac, err := net.ParseMAC(e.MAC)
		if err != nil {
			return fmt.Errorf("ENI %s has MAC %q: %w", e.ID, e.MAC, err)
		}
		subnet, ok := subnetCIDRs[e.SubnetID]
		if !ok {
			subnet, err = a.subnets.cidr(ctx, e.SubnetID)
			if err != nil {
				return err
			}
		}
		addr, hostSubnet := a.subnets.hostAddress(ctx, e, subnet)
		hostIP = addr
		if err := a.host.SetupENI(ctx, networkutils.ENI{MAC: mac, PrimaryIP: addr, Subnet: hostSubnet,
			DeviceNumber: e.Attachment.DeviceIndex, NetworkCard: c.index, MTU: a.cfg.ENIMTU, Trunk: trunk}); err != nil {
			return fmt.Errorf("host networking of ENI %s: %w", e.ID, err)
		}
	}
	if err := c.store.AddENI(datastore.ENI{ID: e.ID, DeviceNumber: e.Attachment.DeviceIndex, IsPrimary: primary,
		IsTrunk: trunk, IsEFA: e.InterfaceType == "efa", RouteTableID: table, SubnetID: e.SubnetID}); err != nil {
		return err
	}
	a.book.remember(e.ID, hostIP, e.Attachment.ID)
	a.node.rememberMAC(e.ID, e.MAC)
	if a.node.excluded[e.SubnetID] {
		// kubernetes.io/role/cni=0 (or another cluster's subnet): no new pod
		// addresses here; the planner releases its unused ones.
		a.log.Info("ENI's subnet is excluded from pod addresses", "eni", e.ID, "subnet", e.SubnetID)
		if err := c.store.SetExcluded(e.ID, true); err != nil {
			return err
		}
	}
	if trunk {
		return nil
	}
	if !primary && e.Attachment.ID != "" && !e.Attachment.DeleteOnTermination && !a.cfg.DisableProvisioning {
		// A crash between attach and delete-on-termination leaves this unset.
		if err := a.ec2.SetDeleteOnTermination(ctx, e.ID, e.Attachment.ID); err != nil {
			a.log.Warn("could not set delete-on-termination", "eni", e.ID, "err", err)
		}
	}
	if err := c.addCIDRs(e.ID, podCIDRs(e, a.cfg.EnableIPv6, a.cfg.CustomNetworking && primary)); err != nil {
		return err
	}
	if a.cfg.CustomNetworking && primary && !a.cfg.EnableIPv6 {
		c.noteStrayPrefixes(e.IPv4Prefixes)
	}
	if a.cfg.EnableIPv6 {
		return c.ensureIPv6Prefix(ctx, e.ID)
	}
	return nil
}

// leaving reports whether EC2 is taking the attachment away.
func leaving(at *awsutils.Attachment) bool {
	return at.Status == "detaching" || at.Status == "detached"
}

// tag gives a managed ENI adopted at start (the primary included, as
// upstream does) the tags it lacks, in one call, and none when it has
// them all (docs/compatibility.md, "ipamd: EC2 usage and tags"). A
// failure is logged: the ENI works untagged.
func (a *adopter) tag(ctx context.Context, e awsutils.ENI) {
	if a.cfg.DisableProvisioning || e.InterfaceType == "trunk" {
		// Upstream tags nothing without provisioning (IMDS-only implies it).
		return
	}
	tags := missingTags(e.Tags, a.node.id.InstanceID, a.cfg.ClusterName, a.cfg.AdditionalENITags)
	if tags == nil {
		return
	}
	if err := a.ec2.CreateTags(ctx, e.ID, tags); err != nil {
		a.log.Warn("could not tag an ENI", "eni", e.ID, "err", err, "ec2Code", awsutils.Code(err))
		return
	}
	if e.Tags == nil {
		e.Tags = map[string]string{}
	}
	maps.Copy(e.Tags, tags)
	a.log.Info("tagged ENI", "eni", e.ID, "tags", tags)
}

// podCIDRs lists the CIDRs of an ENI that serve pods in the node's family:
// IPv6 mode, the first IPv6 prefix (upstream uses only one); IPv4, the
// secondary addresses (as /32) and prefixes. customPrimary (the primary
// ENI under custom networking) leaves its IPv4 prefixes out, as upstream
// does: they lie in the node's subnet, and pods belong in the ENIConfig's.
func podCIDRs(e awsutils.ENI, ipv6, customPrimary bool) []netip.Prefix {
	if ipv6 {
		if len(e.IPv6Prefixes) > 0 {
			return e.IPv6Prefixes[:1]
		}
		return nil
	}
	if customPrimary {
		e.IPv4Prefixes = nil
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
