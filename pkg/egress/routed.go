package egress

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrRoutedElsewhere is returned when the node already routes the pod's
// egress address to another link.
var ErrRoutedElsewhere = errors.New("egress address already routed to another link")

// RoutedAddrs returns the addresses of rng the node routes to a link as
// host routes (/32, /128): other attachments' egress addresses. Networks
// chaining egress-cni keep one address store each, but the installer's
// conflist gives them all the same range, so an address free in this
// network's store may be another network's pod's (docs/compatibility.md,
// "IPv6 and egress-cni"). It runs in the node's namespace.
func RoutedAddrs(f Family, rng Range) (map[netip.Addr]bool, error) {
	fam := netlink.FAMILY_V4
	if f == V6 {
		fam = netlink.FAMILY_V6
	}
	routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("list node routes: %w", err)
	}
	out := map[netip.Addr]bool{}
	for _, r := range routes {
		if a, ok := hostRouteAddr(r.Dst); ok && rng.Subnet.Contains(a) {
			out[a] = true
		}
	}
	return out, nil
}

// hostRouteAddr returns the address of a host route's destination.
func hostRouteAddr(dst *net.IPNet) (netip.Addr, bool) {
	if dst == nil {
		return netip.Addr{}, false
	}
	ones, bits := dst.Mask.Size()
	a, ok := netip.AddrFromSlice(dst.IP)
	if !ok || ones != bits {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// checkRouteFree fails when the node routes addr to a link other than
// linkIndex: a concurrent ADD of another network took the same address,
// and replacing its route would send that pod's replies to this one.
func checkRouteFree(addr netip.Addr, linkIndex int) error {
	dst := hostRoute(addr.AsSlice())
	fam := netlink.FAMILY_V4
	if addr.Is6() {
		fam = netlink.FAMILY_V6
	}
	routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Dst: dst, Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list node routes to %s: %w", addr, err)
	}
	for _, r := range routes {
		if r.LinkIndex != linkIndex {
			name := fmt.Sprint(r.LinkIndex)
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil {
				name = l.Attrs().Name
			}
			return fmt.Errorf("%w: %s via %s", ErrRoutedElsewhere, addr, name)
		}
	}
	return nil
}
