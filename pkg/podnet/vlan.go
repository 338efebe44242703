package podnet

import (
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
)

// VLANLinker creates the 802.1Q link that carries one branch ENI's traffic
// on the trunk ENI. It is the only step of branch-ENI wiring that needs
// kernel VLAN support, so tests on kernels without it substitute a link of
// another type under the same name.
type VLANLinker interface {
	CreateVLAN(name string, parentIndex, vlanID int, mac net.HardwareAddr) error
}

// KernelVLAN creates real 802.1Q links with netlink; production uses it.
type KernelVLAN struct{}

// CreateVLAN adds an 802.1Q link named name on the trunk link parentIndex.
func (KernelVLAN) CreateVLAN(name string, parentIndex, vlanID int, mac net.HardwareAddr) error {
	link := &netlink.Vlan{
		LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parentIndex, HardwareAddr: mac},
		VlanId:    vlanID,
	}
	if err := netlink.LinkAdd(link); err != nil {
		return fmt.Errorf("create VLAN link %s (id %d on ifindex %d): %w", name, vlanID, parentIndex, err)
	}
	return nil
}
