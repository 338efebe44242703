package ipamd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
)

// nodeState is what ipamd knows about its instance. Init writes the plain
// fields once, before the node is ready; they are only read after. The
// facts that change later carry their own lock: the VPC's CIDRs and the
// primary ENI's groups (RefreshNode), max pods (SetKubernetes) and, under
// mu, ENI MACs.
type nodeState struct {
	id         awsutils.Identity
	typ        awsutils.InstanceTypeInfo
	subnetID   string
	subnetCIDR netip.Prefix
	vpcID      string
	primaryENI string
	vpcV6CIDRs []netip.Prefix
	pd         bool            // prefix delegation in effect (false on non-Nitro)
	excluded   map[string]bool // subnets excluded from pod addresses (subnet discovery)

	sgs      guarded[[]string]
	vpcCIDRs guarded[[]netip.Prefix]
	maxPods  guarded[int] // it may change once, see SetKubernetes

	mu   sync.RWMutex
	macs map[string]net.HardwareAddr // ENI id → MAC
}

func newNodeState() *nodeState {
	return &nodeState{excluded: map[string]bool{}, macs: map[string]net.HardwareAddr{}}
}

func (s *nodeState) rememberMAC(id, mac string) {
	if hw, err := net.ParseMAC(mac); err == nil {
		s.mu.Lock()
		s.macs[id] = hw
		s.mu.Unlock()
	}
}

func (s *nodeState) mac(id string) net.HardwareAddr {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.macs[id]
}

// nodeSeen is what learning the node read besides the node's facts, for
// the rest of Init.
type nodeSeen struct {
	mds         []awsutils.ENIMetadata // instance metadata's ENIs
	attached    []awsutils.ENI         // EC2's description of the attached ENIs (none in IMDS-only mode)
	subnetCIDRs map[string]netip.Prefix
}

// learn reads the node's facts at Init: its identity and instance type,
// its primary ENI's subnet, VPC and groups, the VPC's CIDRs, and whether
// prefix delegation applies. It checks what the configuration needs of
// them (IPv6 prefixes, a VPC CIDR).
func (s *nodeState) learn(ctx context.Context, cfg config.Config, md Metadata, ec2 EC2, log *slog.Logger) (seen nodeSeen, err error) {
	id, err := md.Identity(ctx)
	if err != nil {
		return seen, fmt.Errorf("ipamd init: reading instance identity: %w", err)
	}
	s.id = id
	seen.mds, err = md.ENIs(ctx)
	if err != nil {
		return seen, fmt.Errorf("ipamd init: reading ENIs from instance metadata: %w", err)
	}
	typ := awsutils.InstanceTypeInfo{Type: id.InstanceType}
	if cfg.IMDSOnlyMode {
		// No EC2 at all: the node's facts come from its primary ENI's metadata.
		for _, m := range seen.mds {
			if m.MAC == id.PrimaryMAC {
				s.subnetID, s.vpcID, s.primaryENI = m.SubnetID, m.VPCID, m.ENIID
				s.sgs.set(m.SecurityGroups)
			}
		}
	} else {
		// The two questions are independent: ask them at once. The
		// attached ENIs say all ipamd needs of the instance: no
		// DescribeInstances besides.
		var typErr error
		asked := make(chan struct{})
		go func() {
			defer close(asked)
			typ, typErr = ec2.InstanceType(ctx, id.InstanceType)
		}()
		seen.attached, err = ec2.InstanceENIs(ctx, id.InstanceID)
		<-asked
		if typErr != nil {
			return seen, fmt.Errorf("ipamd init: limits of instance type %s: %w", id.InstanceType, typErr)
		}
		if err != nil {
			return seen, fmt.Errorf("ipamd init: %w", err)
		}
		primary, ok := primaryENI(seen.attached)
		if !ok {
			return seen, fmt.Errorf("ipamd init: EC2 lists no ENI at device 0 of network card 0 on instance %s", id.InstanceID)
		}
		s.subnetID, s.vpcID, s.primaryENI = primary.SubnetID, primary.VPCID, primary.ID
		s.sgs.set(primary.SecurityGroups)
	}
	s.typ = typ
	seen.subnetCIDRs = map[string]netip.Prefix{}
	for _, m := range seen.mds {
		if m.SubnetIPv4CIDR.IsValid() {
			seen.subnetCIDRs[m.SubnetID] = m.SubnetIPv4CIDR
		}
		if m.MAC == id.PrimaryMAC {
			s.vpcCIDRs.set(m.VPCIPv4CIDRs)
			s.vpcV6CIDRs = m.VPCIPv6CIDRs
			s.subnetCIDR = m.SubnetIPv4CIDR
			if len(m.SecurityGroups) > 0 {
				s.sgs.set(m.SecurityGroups)
			}
		}
	}
	if cfg.EnableIPv6 && len(s.vpcV6CIDRs) == 0 {
		return seen, fmt.Errorf("ipamd init: ENABLE_IPv6=true but instance metadata lists no VPC IPv6 CIDR for the primary MAC %s", id.PrimaryMAC)
	}
	if !cfg.EnableIPv6 && len(s.vpcCIDRs.get()) == 0 {
		return seen, fmt.Errorf("ipamd init: instance metadata lists no VPC IPv4 CIDR for the primary MAC %s", id.PrimaryMAC)
	}

	s.pd = cfg.EnablePrefixDelegation
	if cfg.EnableIPv6 && !typ.PrefixDelegationSupported() && !cfg.IMDSOnlyMode {
		return seen, fmt.Errorf("ipamd init: ENABLE_IPv6=true needs IPv6 prefixes, which instance type %s (hypervisor %s) does not support",
			typ.Type, typ.Hypervisor)
	}
	// IMDS-only mode asks EC2 nothing, so the hypervisor is unknown: trust
	// the setting, as for IPv6 above (the operator assigns the prefixes).
	if s.pd && !typ.PrefixDelegationSupported() && !cfg.IMDSOnlyMode {
		log.Warn("ENABLE_PREFIX_DELEGATION=true but the instance type supports no prefixes (not Nitro, not bare metal): using secondary IPs",
			"instanceType", typ.Type, "hypervisor", typ.Hypervisor)
		s.pd = false
	}
	return seen, nil
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
