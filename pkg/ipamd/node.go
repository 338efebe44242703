package ipamd

import (
	"net"
	"net/netip"
	"sync"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
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
