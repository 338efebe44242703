package podnettest

import (
	"net"

	"github.com/vishvananda/netlink"
)

// MacvlanVLAN stands in for podnet.KernelVLAN on kernels without 802.1Q:
// it creates a bridge-mode macvlan with the VLAN link's name, parent and
// MAC. Like the VLAN link it receives the frames the VPC sends to the
// branch ENI's MAC over the trunk, so everything routed through it behaves
// as in production; only the 802.1Q tag is missing.
type MacvlanVLAN struct{}

// CreateVLAN implements podnet.VLANLinker.
func (MacvlanVLAN) CreateVLAN(name string, parentIndex, _ int, mac net.HardwareAddr) error {
	return netlink.LinkAdd(&netlink.Macvlan{
		LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parentIndex, HardwareAddr: mac},
		Mode:      netlink.MACVLAN_MODE_BRIDGE,
	})
}
