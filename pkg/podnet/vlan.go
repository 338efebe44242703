package podnet

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// StandinAlias marks a branch-ENI stand-in: a veth that the local VPC's
// data plane hot-plugs into the node under the VLAN link's name, with the
// branch ENI's MAC, on kernels without 802.1Q. The plugin adopts such a
// link instead of creating a VLAN link and never deletes it
// (docs/compatibility.md, "Plugin (aws-cni) and runtime input").
const StandinAlias = "vpcsim:branch-standin"

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
		if errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("create VLAN link %s (id %d on ifindex %d): the kernel has no 802.1Q VLAN support (and no branch stand-in link %s exists): %w",
				name, vlanID, parentIndex, name, err)
		}
		return fmt.Errorf("create VLAN link %s (id %d on ifindex %d): %w", name, vlanID, parentIndex, err)
	}
	return nil
}

// isStandin reports whether link is a branch-ENI stand-in.
func isStandin(link netlink.Link) bool {
	return link.Attrs().Alias == StandinAlias
}

// branchLink returns the link that carries branch b's traffic, named name:
// an existing stand-in with the branch ENI's MAC is adopted as it is;
// any other link of that name is a leftover of an earlier pod and is
// replaced by a new one from vl.
func branchLink(vl VLANLinker, b Branch, name string) (netlink.Link, error) {
	link, err := netlink.LinkByName(name)
	switch {
	case isNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("find VLAN link %s: %w", name, err)
	case isStandin(link):
		if !bytes.Equal(link.Attrs().HardwareAddr, b.ENIMAC) {
			return nil, fmt.Errorf("branch stand-in link %s carries MAC %s, not the branch ENI's %s", name, link.Attrs().HardwareAddr, b.ENIMAC)
		}
		return link, nil
	default:
		if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("remove stale VLAN link %s: %w", name, err)
		}
	}
	if err := vl.CreateVLAN(name, b.ParentIfIndex, b.VLANID, b.ENIMAC); err != nil {
		return nil, err
	}
	link, err = netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("find VLAN link %s: %w", name, err)
	}
	return link, nil
}
