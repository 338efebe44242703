package ipamd

import (
	"net"
	"net/netip"
	"sync"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// nodeState is what ipamd knows about its instance. Init writes the plain
// fields once, before the node is ready; they are only read after. mu
// guards the facts that change later: the VPC's CIDRs and the primary
// ENI's groups (RefreshNode), max pods (SetKubernetes) and ENI MACs.
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

	mu       sync.RWMutex
	sgs      []string
	vpcCIDRs []netip.Prefix
	maxPods  int
	macs     map[string]net.HardwareAddr // ENI id → MAC
}

func newNodeState() *nodeState {
	return &nodeState{excluded: map[string]bool{}, macs: map[string]net.HardwareAddr{}}
}

func (s *nodeState) securityGroups() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sgs
}

func (s *nodeState) setSecurityGroups(sgs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sgs = sgs
}

func (s *nodeState) vpcIPv4CIDRs() []netip.Prefix {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.vpcCIDRs
}

func (s *nodeState) setVPCIPv4CIDRs(cidrs []netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vpcCIDRs = cidrs
}

// maxPodsNow is the node's max pods (it may change once, see
// SetKubernetes).
func (s *nodeState) maxPodsNow() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.maxPods
}

func (s *nodeState) setMaxPods(mp int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxPods = mp
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
