package podnettest

import (
	"fmt"
	"net"
	"strconv"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// StandinAlias is the alias of a branch-ENI stand-in link; it must equal
// podnet.StandinAlias (podnettest does not import podnet).
const StandinAlias = "vpcsim:branch-standin"

// Standin is a branch-ENI stand-in as the local VPC's data plane makes it
// on kernels without 802.1Q: a veth named vlan.eth.<id> in the node with
// the branch ENI's MAC and the stand-in alias, whose peer is the branch's
// port in the VPC namespace. The VPC side holds the branch subnet's router
// address and a permanent neighbour for the pod address, as EC2 knows
// which ENI owns it.
type Standin struct {
	Node, VPC ns.NetNS
	VLANID    int
	MAC       net.HardwareAddr
	// RouterCIDR is the subnet router's address with the subnet's length.
	RouterCIDR string
	PodIP      net.IP
}

// Name is the stand-in's link name in the node.
func (s Standin) Name() string { return "vlan.eth." + strconv.Itoa(s.VLANID) }

// Port is the name of the stand-in's peer in the VPC namespace.
func (s Standin) Port() string { return "branch" + strconv.Itoa(s.VLANID) }

// Plug creates the stand-in.
func (s Standin) Plug() error {
	err := s.Node.Do(func(ns.NetNS) error {
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: s.Name(), HardwareAddr: s.MAC},
			PeerName:      s.Port(),
			PeerNamespace: netlink.NsFd(int(s.VPC.Fd())),
		}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("create stand-in %s: %w", s.Name(), err)
		}
		l, err := netlink.LinkByName(s.Name())
		if err != nil {
			return err
		}
		return netlink.LinkSetAlias(l, StandinAlias)
	})
	if err != nil {
		return err
	}
	return s.VPC.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(s.Port())
		if err != nil {
			return err
		}
		addr, err := netlink.ParseIPNet(s.RouterCIDR)
		if err != nil {
			return err
		}
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: addr}); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		fam := unix.AF_INET
		if s.PodIP.To4() == nil {
			fam = unix.AF_INET6
		}
		return netlink.NeighSet(&netlink.Neigh{LinkIndex: l.Attrs().Index, Family: fam, State: netlink.NUD_PERMANENT, IP: s.PodIP, HardwareAddr: s.MAC})
	})
}

// Ifindex returns the stand-in's ifindex in the node, to prove it was
// adopted rather than re-created.
func (s Standin) Ifindex() (int, error) {
	var idx int
	err := s.Node.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(s.Name())
		if err != nil {
			return err
		}
		idx = l.Attrs().Index
		return nil
	})
	return idx, err
}
