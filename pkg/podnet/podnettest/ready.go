package podnettest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/poll"
)

// readyLimit bounds each wait below; on a loaded machine the kernel's own
// timers (DAD, neighbour retransmits) stretch, so it is generous.
const readyLimit = 30 * time.Second

// WaitIPv6Ready waits until every named link in the namespace at nsPath is
// up with carrier and done with duplicate address detection: it has an
// IPv6 link-local address and no tentative one. Until then the kernel has
// no source for neighbour discovery on the link and drops what needs it.
func WaitIPv6Ready(ctx context.Context, nsPath string, links ...string) error {
	return poll.Until(ctx, readyLimit, func() error {
		return ns.WithNetNSPath(nsPath, func(ns.NetNS) error {
			for _, name := range links {
				if err := ipv6Ready(name); err != nil {
					return fmt.Errorf("%s in %s: %w", name, nsPath, err)
				}
			}
			return nil
		})
	})
}

func ipv6Ready(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	if a := l.Attrs(); a.Flags&net.FlagUp == 0 || a.RawFlags&unix.IFF_LOWER_UP == 0 {
		return errors.New("not up with carrier")
	}
	addrs, err := netlink.AddrList(l, unix.AF_INET6)
	if err != nil {
		return err
	}
	linkLocal := false
	for _, a := range addrs {
		if a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			return fmt.Errorf("%s still tentative (flags %#x)", a.IPNet, a.Flags)
		}
		linkLocal = linkLocal || a.IP.IsLinkLocalUnicast()
	}
	if !linkLocal {
		return errors.New("no IPv6 link-local address yet")
	}
	return nil
}

// WaitNeighbour has the kernel in the namespace at nsPath resolve ip on
// link, as a packet waiting for it would (NTF_USE), and waits until the
// entry holds a link-layer address.
func WaitNeighbour(ctx context.Context, nsPath, link string, ip net.IP) error {
	return poll.Until(ctx, readyLimit, func() error {
		return ns.WithNetNSPath(nsPath, func(ns.NetNS) error {
			l, err := netlink.LinkByName(link)
			if err != nil {
				return err
			}
			neighs, err := netlink.NeighList(l.Attrs().Index, family(ip))
			if err != nil {
				return err
			}
			for _, n := range neighs {
				if n.IP.Equal(ip) && len(n.HardwareAddr) > 0 && n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT) != 0 {
					return nil
				}
			}
			// (Re)start resolution; a FAILED entry is probed afresh.
			use := &netlink.Neigh{LinkIndex: l.Attrs().Index, Family: family(ip), IP: ip, Flags: unix.NTF_USE}
			if err := netlink.NeighSet(use); err != nil {
				return fmt.Errorf("resolve %s on %s: %w", ip, link, err)
			}
			return fmt.Errorf("%s on %s not resolved yet", ip, link)
		})
	})
}

func family(ip net.IP) int {
	if ip.To4() != nil {
		return unix.AF_INET
	}
	return unix.AF_INET6
}
