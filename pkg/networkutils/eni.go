package networkutils

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"golang.org/x/sys/unix"
)

// Validate reports every problem with e, naming the field. It refuses only
// the primary ENI (card 0, device 0): the first ENI on any other network
// card is device 0 too, and it is wired like any secondary ENI (table
// 10000+100·card).
func (e ENI) Validate() error {
	var errs []error
	if len(e.MAC) == 0 {
		errs = append(errs, errors.New("ENI MAC is empty"))
	}
	switch {
	case e.DeviceNumber < 0:
		errs = append(errs, fmt.Errorf("ENI %s: device number %d is negative", e.MAC, e.DeviceNumber))
	case e.NetworkCard == 0 && e.DeviceNumber == 0:
		errs = append(errs, fmt.Errorf("ENI %s: device 0 on network card 0 is the primary ENI, never set up as a secondary ENI", e.MAC))
	}
	if e.NetworkCard < 0 {
		errs = append(errs, fmt.Errorf("ENI %s: network card %d is negative", e.MAC, e.NetworkCard))
	}
	if !e.PrimaryIP.IsValid() {
		errs = append(errs, fmt.Errorf("ENI %s: primary IP is not set", e.MAC))
	}
	if !e.Subnet.IsValid() {
		errs = append(errs, fmt.Errorf("ENI %s: subnet is not set", e.MAC))
	} else if e.PrimaryIP.IsValid() && !e.Subnet.Contains(e.PrimaryIP) {
		errs = append(errs, fmt.Errorf("ENI %s: primary IP %s is outside subnet %s", e.MAC, e.PrimaryIP, e.Subnet))
	}
	if e.MTU != 0 && (e.MTU < 576 || e.MTU > 9001) {
		errs = append(errs, fmt.Errorf("ENI %s: MTU %d outside 576..9001", e.MAC, e.MTU))
	}
	return errors.Join(errs...)
}

// SetupENI wires a secondary ENI (docs/compatibility.md, "Per-ENI state"):
// MTU and up; the ENI's primary address as the link's only global address; in
// the ENI's route table a scope-link route to the subnet gateway and a
// default route via it; the kernel's main-table subnet route for the link
// removed (so the subnet is reached through the ENI's table only); and,
// unless trunk, the rule `from <eniIP> lookup <table>` at priority 32765,
// the only one at that priority for the address or into the table.
// Running it again on a wired ENI changes nothing.
func (n *Network) SetupENI(ctx context.Context, eni ENI) error {
	if err := eni.Validate(); err != nil {
		return err
	}
	link, err := n.linkByMAC(ctx, eni.MAC)
	if err != nil {
		return err
	}
	name := link.Attrs().Name
	mtu := eni.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	if link.Attrs().MTU != mtu {
		if err := netlink.LinkSetMTU(link, mtu); err != nil {
			return fmt.Errorf("set MTU %d on %s: %w", mtu, name, err)
		}
	}
	if link.Attrs().Flags&unix.IFF_UP == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("set %s up: %w", name, err)
		}
	}
	if err := setOnlyAddress(link, netip.PrefixFrom(eni.PrimaryIP, eni.Subnet.Bits())); err != nil {
		return err
	}

	table := hostcontract.RouteTable(eni.NetworkCard, eni.DeviceNumber)
	gw := SubnetGateway(eni.Subnet)
	fam := family(eni.PrimaryIP)
	routes := []netlink.Route{
		{LinkIndex: link.Attrs().Index, Dst: hostPrefix(gw), Scope: netlink.SCOPE_LINK, Table: table, Family: fam},
		{LinkIndex: link.Attrs().Index, Dst: prefixToIPNet(netip.PrefixFrom(unspecified(fam), 0)), Gw: gw.AsSlice(), Table: table, Family: fam},
	}
	for i := range routes {
		if err := replaceRoute(ctx, &routes[i]); err != nil {
			return fmt.Errorf("ENI %s (%s): route %s in table %d: %w", eni.MAC, name, routes[i], table, err)
		}
	}
	if err := deleteMainSubnetRoute(link, eni.Subnet.Masked()); err != nil {
		return fmt.Errorf("ENI %s (%s): %w", eni.MAC, name, err)
	}
	// One rule per ENI address, and one per table: a rule left from an
	// earlier device index would send the ENI's traffic to a stale table,
	// and one left by an ENI that went away while ipamd was down (nothing
	// tore it down) would send whoever gets its address next, say a pod on
	// the primary ENI, out of this ENI, whose source check drops it.
	src := netip.PrefixFrom(eni.PrimaryIP, eni.PrimaryIP.BitLen())
	slot := func(r ruleSpec) bool {
		return r.Priority == hostcontract.PriorityENI && (r.Src == src || r.Table == table && r.Family == fam)
	}
	if eni.Trunk {
		// No rule of its own, and none of others into its table.
		if err := deleteRules(fam, slot); err != nil {
			return fmt.Errorf("ENI %s (%s): %w", eni.MAC, name, err)
		}
		return nil
	}
	want := ruleSpec{Priority: hostcontract.PriorityENI, Family: fam, Src: src, Table: table}
	if err := setRule(want, slot); err != nil {
		return fmt.Errorf("ENI %s (%s): %w", eni.MAC, name, err)
	}
	return nil
}

func unspecified(fam int) netip.Addr {
	if fam == netlink.FAMILY_V4 {
		return netip.IPv4Unspecified()
	}
	return netip.IPv6Unspecified()
}

// setOnlyAddress makes want the only global address of its family on link.
func setOnlyAddress(link netlink.Link, want netip.Prefix) error {
	name := link.Attrs().Name
	addrs, err := dump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, family(want.Addr())) })
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", name, err)
	}
	have := false
	var errs []error
	for _, a := range addrs {
		p := ipNetToPrefix(a.IPNet)
		if !p.Addr().IsGlobalUnicast() || p.Addr().IsLinkLocalUnicast() {
			continue
		}
		if p == want {
			have = true
			continue
		}
		if err := netlink.AddrDel(link, &a); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			errs = append(errs, fmt.Errorf("delete address %s from %s: %w", p, name, err))
		}
	}
	if !have {
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: prefixToIPNet(want)}); err != nil && !errors.Is(err, unix.EEXIST) {
			errs = append(errs, fmt.Errorf("add address %s to %s: %w", want, name, err))
		}
	}
	return errors.Join(errs...)
}

// replaceRoute installs r, retrying a few times with backoff: right after a
// hot-plug the link may still be settling.
func replaceRoute(ctx context.Context, r *netlink.Route) error {
	wait := 500 * time.Millisecond
	var err error
	for i := range 5 {
		if err = netlink.RouteReplace(r); err == nil {
			return nil
		}
		if i == 4 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
	return err
}

// deleteMainSubnetRoute removes the prefix route the kernel adds to main
// for a new address, so ENI traffic is routed by the ENI's table only.
func deleteMainSubnetRoute(link netlink.Link, subnet netip.Prefix) error {
	filter := &netlink.Route{Table: hostcontract.MainTable, LinkIndex: link.Attrs().Index, Dst: prefixToIPNet(subnet)}
	routes, err := dump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(family(subnet.Addr()), filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF|netlink.RT_FILTER_DST)
	})
	if err != nil {
		return fmt.Errorf("list main-table routes of %s: %w", link.Attrs().Name, err)
	}
	var errs []error
	for _, r := range routes {
		if err := netlink.RouteDel(&r); err != nil && !isNotExist(err) {
			errs = append(errs, fmt.Errorf("delete main-table route %s dev %s: %w", subnet, link.Attrs().Name, err))
		}
	}
	return errors.Join(errs...)
}

// TeardownENI removes what SetupENI added for an ENI that is going away:
// every rule whose source is the ENI's primary IP and every route of its
// table, except routes through a link wired for another ENI. EC2 hands a
// detached ENI's device index, and so its table, to the next ENI, and
// ipamd may set that one up before it tears the old one down: its routes
// are not the old ENI's to remove.
func (n *Network) TeardownENI(ctx context.Context, primaryIP netip.Addr, table int) error {
	if !primaryIP.IsValid() {
		return errors.New("teardown ENI: primary IP is not set")
	}
	if table <= 0 || table == hostcontract.MainTable || table == 255 {
		return fmt.Errorf("teardown ENI %s: table %d is not an ENI table", primaryIP, table)
	}
	fam := family(primaryIP)
	var errs []error
	rules, err := listRules(fam)
	if err != nil {
		return fmt.Errorf("teardown ENI %s: list rules: %w", primaryIP, err)
	}
	src := netip.PrefixFrom(primaryIP, primaryIP.BitLen())
	for _, r := range rules {
		if ipNetToPrefix(r.Src) == src {
			if err := delRule(&r); err != nil {
				errs = append(errs, fmt.Errorf("teardown ENI %s: delete rule from %s lookup %d prio %d: %w", primaryIP, src, r.Table, r.Priority, err))
			}
		}
	}
	routes, err := dump(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(fam, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("teardown ENI %s: list table %d: %w", primaryIP, table, err))...)
	}
	taken := map[int]bool{} // link index → wired for another ENI
	for _, r := range routes {
		if _, seen := taken[r.LinkIndex]; !seen {
			taken[r.LinkIndex] = wiredForAnother(r.LinkIndex, primaryIP)
		}
		if taken[r.LinkIndex] {
			n.log.DebugContext(ctx, "teardown ENI: route belongs to the ENI that took the table", "ip", primaryIP, "table", table, "route", r.String())
			continue
		}
		if err := netlink.RouteDel(&r); err != nil && !isNotExist(err) {
			errs = append(errs, fmt.Errorf("teardown ENI %s: delete route %s from table %d: %w", primaryIP, r, table, err))
		}
	}
	n.log.DebugContext(ctx, "ENI torn down", "ip", primaryIP, "table", table)
	return errors.Join(errs...)
}

// wiredForAnother reports whether the link with index idx carries a global
// address of primaryIP's family other than primaryIP (and not primaryIP
// itself): SetupENI gives an ENI's link its primary address only, so such
// a link was wired for another ENI. A link that is gone or unreadable, or
// still holds primaryIP, is not.
func wiredForAnother(idx int, primaryIP netip.Addr) bool {
	link, err := netlink.LinkByIndex(idx)
	if err != nil {
		return false
	}
	addrs, err := dump(func() ([]netlink.Addr, error) { return netlink.AddrList(link, family(primaryIP)) })
	if err != nil {
		return false
	}
	other := false
	for _, a := range addrs {
		p := ipNetToPrefix(a.IPNet)
		switch {
		case p.Addr() == primaryIP:
			return false
		case p.Addr().IsGlobalUnicast() && !p.Addr().IsLinkLocalUnicast():
			other = true
		}
	}
	return other
}
