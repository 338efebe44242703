package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// IPv6 in the VPC (docs/compatibility.md, "IPv6 and egress-cni"). As in
// EC2: every ENI sees the VPC router at fe80:ec2::1; the VPC routes each
// ENI's IPv6 addresses (/128) and delegated prefixes (/80) to the ENI and
// drops packets whose source is not assigned to the ENI they came from
// (the source/destination check, done by an nftables reverse-path lookup
// since IPv6 has no rp_filter); the internet gateway passes the VPC's IPv6
// block both ways without NAT.
var (
	// RouterV6 is the VPC router's IPv6 address on every ENI.
	RouterV6 = netip.MustParseAddr("fe80:ec2::1")
	// DefaultInternetV6Addrs are the IPv6 "internet" hosts (documentation
	// range, only inside the internet namespace).
	DefaultInternetV6Addrs = []netip.Addr{netip.MustParseAddr("2001:db8:ffff::10")}

	transitVPC6  = netip.MustParsePrefix("fd00:ec2:ffff::1/64")
	transitInet6 = netip.MustParsePrefix("fd00:ec2:ffff::2/64")
)

// srcCheckTable is the VPC namespace's ip6 table doing the source check.
const srcCheckTable = "vpcsim-srccheck6"

// IPv6Config configures IPv6 in the data plane.
type IPv6Config struct {
	// VPCBlocks are the VPC's IPv6 CIDRs: the internet routes them back.
	VPCBlocks []netip.Prefix
	// InternetAddrs run a whoami service in the internet namespace;
	// DefaultInternetV6Addrs if empty.
	InternetAddrs []netip.Addr
	// EchoAddrs run a whoami service inside the VPC namespace.
	EchoAddrs []netip.Addr
}

// ipv6State is set once by EnableIPv6.
type ipv6State struct {
	cfg IPv6Config
}

// EnableIPv6 turns IPv6 on: forwarding, the source check, the internet
// gateway and the IPv6 services. Call it after New and before any ENI is
// attached.
func (d *Dataplane) EnableIPv6(cfg IPv6Config) error {
	for _, b := range cfg.VPCBlocks {
		if !b.Addr().Is6() {
			return fmt.Errorf("enable IPv6: VPC block %s is not IPv6", b)
		}
	}
	if len(cfg.InternetAddrs) == 0 {
		cfg.InternetAddrs = DefaultInternetV6Addrs
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("enable IPv6: data plane closed")
	}
	if d.v6 != nil {
		return nil
	}
	if len(d.enis) > 0 {
		return errors.New("enable IPv6: ENIs are attached already")
	}
	if err := sysctls(d.vpcPath, [][2]string{{"net.ipv6.conf.all.forwarding", "1"}, {"net.ipv6.conf.default.accept_dad", "0"}}); err != nil {
		return err
	}
	if err := sysctls(d.inetPath, [][2]string{{"net.ipv6.conf.default.accept_dad", "0"}}); err != nil {
		return err
	}
	vl, il, err := d.addressTransit(transitVPC6, transitInet6, unix.IFA_F_NODAD)
	if err != nil {
		return err
	}
	// The internet gateway: every VPC address may leave, and the VPC's
	// blocks are routed back, untranslated.
	def := &netlink.Route{Dst: ipNet(netip.MustParsePrefix("::/0")), Gw: transitInet6.Addr().AsSlice(), LinkIndex: vl.Attrs().Index}
	if err := d.vpc.RouteReplace(def); err != nil {
		return fmt.Errorf("VPC IPv6 internet route: %w", err)
	}
	for _, b := range cfg.VPCBlocks {
		back := &netlink.Route{Dst: ipNet(b.Masked()), Gw: transitVPC6.Addr().AsSlice(), LinkIndex: il.Attrs().Index}
		if err := d.inet.RouteReplace(back); err != nil {
			return fmt.Errorf("internet route back to %s: %w", b, err)
		}
	}
	if err := applySrcCheck6(int(d.vpcNS)); err != nil {
		return err
	}
	for _, x := range []struct {
		h    *netlink.Handle
		path string
		as   []netip.Addr
	}{{d.inet, d.inetPath, cfg.InternetAddrs}, {d.vpc, d.vpcPath, cfg.EchoAddrs}} {
		for _, a := range x.as {
			if err := addLoopbackNoDAD(x.h, a); err != nil {
				return fmt.Errorf("IPv6 service address %s: %w", a, err)
			}
			c, err := ServeWhoami(x.path, netip.AddrPortFrom(a, WhoamiPort))
			if err != nil {
				return err
			}
			d.svc.add(c)
		}
	}
	d.v6 = &ipv6State{cfg: cfg}
	d.log.Info("VPC data plane: IPv6 on", "vpc_blocks", cfg.VPCBlocks, "internet", cfg.InternetAddrs)
	return nil
}

// IPv6Enabled reports whether EnableIPv6 ran.
func (d *Dataplane) IPv6Enabled() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.v6 != nil
}

// checkFamilies rejects IPv6 prefixes while IPv6 is off.
func (d *Dataplane) checkFamilies(eniID string, prefixes []netip.Prefix) error {
	d.mu.Lock()
	v6 := d.v6 != nil
	d.mu.Unlock()
	for _, p := range prefixes {
		if !p.Addr().Is4() && !v6 {
			return fmt.Errorf("route %v to %s: IPv6 is not enabled in the data plane", p, eniID)
		}
	}
	return nil
}

// nodeSysctlsV6 prepares a new node for IPv6: no DAD delay on links that
// appear later, and forwarding for its pods (the init container sets it on
// a real node; the AMI would after a reboot).
func (d *Dataplane) nodeSysctlsV6(n *node) error {
	if d.v6 == nil {
		return nil
	}
	return sysctls(n.path, [][2]string{{"net.ipv6.conf.default.accept_dad", "0"}, {"net.ipv6.conf.all.accept_dad", "0"}, {"net.ipv6.conf.all.forwarding", "1"}})
}

// nodeLinkLocal is the instance side's link-local address on an ENI: the
// EUI-64 address derived from the ENI's MAC, which the kernel gives the
// link. The VPC uses it, pinned to the MAC, as the next hop of the ENI's
// IPv6 routes.
func nodeLinkLocal(mac net.HardwareAddr) netip.Addr {
	var b [16]byte
	b[0], b[1] = 0xfe, 0x80
	b[8], b[9], b[10] = mac[0]^0x02, mac[1], mac[2]
	b[11], b[12] = 0xff, 0xfe
	b[13], b[14], b[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(b)
}

// plugIPv6 gives a freshly plugged ENI its IPv6 side: the router address
// and the pinned next hop on the VPC end; on the primary ENI, the node's
// primary IPv6 address and default route, as DHCPv6 and RA give an EC2
// instance.
func (d *Dataplane) plugIPv6(n *node, e *eni) error {
	if d.v6 == nil {
		return nil
	}
	vl, err := d.vpc.LinkByName(e.link)
	if err != nil {
		return fmt.Errorf("find %s: %w", e.link, err)
	}
	if err := d.vpc.AddrAdd(vl, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(RouterV6, 64)), Flags: unix.IFA_F_NODAD}); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("router %s on %s: %w", RouterV6, e.link, err)
	}
	neigh := &netlink.Neigh{LinkIndex: vl.Attrs().Index, Family: unix.AF_INET6, State: netlink.NUD_PERMANENT, IP: nodeLinkLocal(e.nic.MAC).AsSlice(), HardwareAddr: e.nic.MAC}
	if err := d.vpc.NeighSet(neigh); err != nil {
		return fmt.Errorf("IPv6 neighbour of %s on %s: %w", e.id, e.link, err)
	}
	if !isPrimaryNIC(e.nic) {
		return nil
	}
	primary, ok := primaryIPv6(e)
	if !ok {
		return nil
	}
	ifName := nicLinkName(e.nic)
	l, err := n.h.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("find %s in node: %w", ifName, err)
	}
	if err := n.h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(primary, 128)), Flags: unix.IFA_F_NODAD}); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("IPv6 address %s on %s: %w", primary, ifName, err)
	}
	def := &netlink.Route{Dst: ipNet(netip.MustParsePrefix("::/0")), Gw: RouterV6.AsSlice(), LinkIndex: l.Attrs().Index}
	if err := n.h.RouteReplace(def); err != nil {
		return fmt.Errorf("IPv6 default route via %s on %s: %w", RouterV6, ifName, err)
	}
	return nil
}

// primaryIPv6 is the lowest /128 of the ENI: the address EC2 assigned at
// launch (later ones come from ipamd's prefixes, /80s).
func primaryIPv6(e *eni) (netip.Addr, bool) {
	var best netip.Addr
	for p := range e.prefixes {
		if p.Addr().Is6() && p.Bits() == 128 && (!best.IsValid() || p.Addr().Less(best)) {
			best = p.Addr()
		}
	}
	return best, best.IsValid()
}

func (d *Dataplane) routeV6Locked(e *eni, p netip.Prefix) error {
	l, err := d.vpc.LinkByName(e.link)
	if err != nil {
		return fmt.Errorf("route %v: find %s: %w", p, e.link, err)
	}
	// On-link: the next hop is pinned to the MAC by plugIPv6, whether or
	// not the link's own link-local prefix is up yet.
	r := &netlink.Route{Dst: ipNet(p), Gw: nodeLinkLocal(e.nic.MAC).AsSlice(), LinkIndex: l.Attrs().Index, Flags: int(netlink.FLAG_ONLINK)}
	if err := d.vpc.RouteReplace(r); err != nil {
		return fmt.Errorf("route %v to %s: %w", p, e.id, err)
	}
	return nil
}

// unrouteV6 is the route UnrouteAddresses deletes for an IPv6 prefix.
func unrouteV6(e *eni, p netip.Prefix, linkIndex int) *netlink.Route {
	return &netlink.Route{Dst: ipNet(p), Gw: nodeLinkLocal(e.nic.MAC).AsSlice(), LinkIndex: linkIndex}
}

// applySrcCheck6 installs the IPv6 source/destination check: a packet
// from an ENI link whose source the VPC would not route back out of that
// same link is dropped (nft: fib saddr . iif oif missing drop).
func applySrcCheck6(nsFd int) error {
	c, err := nftables.New(nftables.WithNetNSFd(nsFd))
	if err != nil {
		return fmt.Errorf("nftables in the VPC namespace: %w", err)
	}
	t := &nftables.Table{Name: srcCheckTable, Family: nftables.TableFamilyIPv6}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	ch := c.AddChain(&nftables.Chain{Name: "prerouting", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRaw})
	name := make([]byte, unix.IFNAMSIZ)
	copy(name, inetLinkVPC)
	lo := make([]byte, unix.IFNAMSIZ)
	copy(lo, "lo")
	for _, n := range [][]byte{name, lo} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: n},
			&expr.Verdict{Kind: expr.VerdictAccept},
		}})
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
		&expr.Fib{Register: 1, FlagSADDR: true, FlagIIF: true, ResultOIF: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 0, 0, 0}},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("program the IPv6 source check: %w", err)
	}
	return nil
}

// routable drops IPv6 addresses while IPv6 is off (the mirror routes
// what the data plane can carry).
func (d *Dataplane) routable(ps []netip.Prefix) []netip.Prefix {
	if d.IPv6Enabled() {
		return ps
	}
	return ipv4Only(ps)
}

func addLoopbackNoDAD(h *netlink.Handle, a netip.Addr) error {
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo: %w", err)
	}
	return h.AddrAdd(lo, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(a, a.BitLen())), Flags: unix.IFA_F_NODAD})
}
