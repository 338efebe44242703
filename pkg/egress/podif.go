package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// ErrPodIfTaken is returned when the pod's v4if0/v6if0 is another
// attachment's: two networks chaining egress-cni into one pod (multus).
// The pod has one such interface and one default route per family, so the
// second attachment fails, as upstream's does, instead of taking the first
// one's egress over (docs/compatibility.md, "IPv6 and egress-cni").
var ErrPodIfTaken = errors.New("the pod's egress interface belongs to another attachment")

// otherOwner returns the node end of the pod's egress link when it is
// another attachment's egress veth (an "egr" link other than ours), ""
// otherwise (ours, or one upstream's plugin made, which this attachment may
// replace or remove as before). It runs in the pod's namespace.
func otherOwner(link netlink.Link, hostNS ns.NetNS, ours string) (string, error) {
	peer, err := nodePeer(link, hostNS)
	if err != nil {
		return "", err
	}
	if peer != ours && strings.HasPrefix(peer, "egr") {
		return peer, nil
	}
	return "", nil
}

// nodePeer returns the name of link's peer in the node's namespace, ""
// when link is no veth or its peer is not in the node's namespace. It runs
// in the pod's namespace.
func nodePeer(link netlink.Link, hostNS ns.NetNS) (string, error) {
	veth, ok := link.(*netlink.Veth)
	if !ok {
		return "", nil
	}
	idx, err := netlink.VethPeerIndex(veth)
	if err != nil {
		return "", fmt.Errorf("peer of %s: %w", link.Attrs().Name, err)
	}
	var peer string
	err = hostNS.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByIndex(idx)
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		if err != nil {
			return err
		}
		peer = l.Attrs().Name
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("node end of %s: %w", link.Attrs().Name, err)
	}
	return peer, nil
}

// clearPodIf removes the pod's egress link before an ADD wires it, unless
// another attachment owns it (ErrPodIfTaken). It runs in the pod's
// namespace.
func clearPodIf(f Family, hostNS ns.NetNS, ours string) error {
	name := f.PodIfName()
	l, err := linkIfExists(name)
	if err != nil || l == nil {
		return err
	}
	other, err := otherOwner(l, hostNS, ours)
	if err != nil {
		return err
	}
	if other != "" {
		return fmt.Errorf("%w: %s (node end %s); one egress-cni attachment per pod and family", ErrPodIfTaken, name, other)
	}
	return delLink(l)
}

// removeOwnPodIf removes the pod's egress link on DEL only when it is this
// attachment's: its node end is ours, or (a link upstream's plugin made,
// whose node end has another name) it carries an address this attachment
// holds. A DEL whose CNI_NETNS or CNI_IFNAME is wrong so leaves another
// pod's or another plugin's interface of that name alone. It runs in the
// pod's namespace.
func removeOwnPodIf(f Family, hostNS ns.NetNS, ours string, held []netip.Addr) error {
	l, err := linkIfExists(f.PodIfName())
	if err != nil || l == nil {
		return err
	}
	peer, err := nodePeer(l, hostNS)
	if err != nil {
		return err
	}
	if peer == ours {
		return delLink(l)
	}
	if strings.HasPrefix(peer, "egr") || len(held) == 0 {
		return nil
	}
	fam := netlink.FAMILY_V4
	if f == V6 {
		fam = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(l, fam)
	if err != nil {
		return fmt.Errorf("addresses of %s: %w", l.Attrs().Name, err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && slices.Contains(held, ip.Unmap()) {
			return delLink(l)
		}
	}
	return nil
}
