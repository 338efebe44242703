package dataplane

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// AttachNIC hot-plugs an ENI into an instance: eth<device index> appears in
// the node with the ENI's MAC. The primary ENI (device 0) is configured as
// the AMI would: address, subnet route and default route via subnet+1.
// Secondary ENIs stay down and unconfigured, for ipamd to set up.
func (d *Dataplane) AttachNIC(instanceID string, nic NIC) error {
	if err := validNIC(nic); err != nil {
		return fmt.Errorf("attach to %s: %w", instanceID, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("attach: data plane closed")
	}
	n, ok := d.nodes[instanceID]
	if !ok {
		return fmt.Errorf("attach %s: instance %q not in the data plane", nic.ENIID, instanceID)
	}
	e := d.eniLocked(nic.ENIID)
	if e.node != "" {
		if e.node == instanceID && e.nic.DeviceIndex == nic.DeviceIndex && e.nic.NetworkCard == nic.NetworkCard {
			return nil
		}
		return fmt.Errorf("attach %s to %s: already attached to %s", nic.ENIID, instanceID, e.node)
	}
	e.nic = nic
	if err := d.plug(n, e); err != nil {
		return fmt.Errorf("attach %s to %s: %w", nic.ENIID, instanceID, err)
	}
	d.log.Info("ENI hot-plugged", "instance", instanceID, "eni", nic.ENIID, "device", nic.DeviceIndex, "mac", nic.MAC.String(), "link", e.link)
	return errors.Join(d.plugBranchesLocked(nic.ENIID), d.applySGLocked())
}

func validNIC(nic NIC) error {
	switch {
	case nic.ENIID == "":
		return errors.New("NIC without ENI id")
	case len(nic.MAC) != 6:
		return fmt.Errorf("ENI %s: MAC %q is not a 6-byte MAC", nic.ENIID, nic.MAC)
	case !nic.PrimaryIP.Is4():
		return fmt.Errorf("ENI %s: primary IP %v is not IPv4", nic.ENIID, nic.PrimaryIP)
	case !nic.Subnet.Contains(nic.PrimaryIP):
		return fmt.Errorf("ENI %s: primary IP %v outside subnet %v", nic.ENIID, nic.PrimaryIP, nic.Subnet)
	case nic.DeviceIndex < 0 || nic.DeviceIndex > 99:
		return fmt.Errorf("ENI %s: device index %d out of range 0-99", nic.ENIID, nic.DeviceIndex)
	case nic.NetworkCard < 0 || nic.NetworkCard > 15:
		return fmt.Errorf("ENI %s: network card %d out of range 0-15", nic.ENIID, nic.NetworkCard)
	}
	return nil
}

func (d *Dataplane) eniLocked(id string) *eni {
	e, ok := d.enis[id]
	if !ok {
		e = &eni{id: id, prefixes: map[netip.Prefix]bool{}}
		d.enis[id] = e
	}
	return e
}

// routerAddr is the VPC router address of a subnet: its network address + 1.
func routerAddr(subnet netip.Prefix) netip.Addr { return subnet.Masked().Addr().Next() }

func (d *Dataplane) plug(n *node, e *eni) error {
	ifName := nicLinkName(e.nic)
	return d.plugAs(n, e, ifName, fmt.Sprintf("n%d-%s", n.seq, ifName), "")
}

// plugAs links an ENI into node n as ifName (VPC side vpcName). A non-empty
// alias marks a link that stands in for something else (standin.go).
func (d *Dataplane) plugAs(n *node, e *eni, ifName, vpcName, alias string) error {
	nic := e.nic
	if _, err := n.h.LinkByName(ifName); err == nil {
		return fmt.Errorf("instance already has %s", ifName)
	}
	veth := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: vpcName, MTU: d.mtu},
		PeerName:         ifName,
		PeerHardwareAddr: nic.MAC,
		PeerMTU:          uint32(d.mtu),
		PeerNamespace:    netlink.NsFd(int(n.nsh)),
	}
	if err := d.vpc.LinkAdd(veth); err != nil {
		return fmt.Errorf("create link %s/%s: %w", vpcName, ifName, err)
	}
	e.node, e.link = n.id, vpcName
	vl, err := d.vpc.LinkByName(vpcName)
	if err != nil {
		return fmt.Errorf("find %s: %w", vpcName, err)
	}
	// Answer proxied ARP at once, not after up to 0.8 s (the kernel default).
	conf := [][2]string{{"net.ipv4.neigh." + vpcName + ".proxy_delay", "0"}}
	if alias != "" {
		// A node has no address on a branch's VLAN link, so its ARP for
		// the branch subnet's router carries the node's primary address,
		// which the strict reverse-path check of this port would drop; EC2
		// answers ARP whatever the sender. So a branch port has no
		// reverse-path source check (docs/compatibility.md, "Security
		// groups for pods").
		conf = append(conf, [2]string{"net.ipv4.conf." + vpcName + ".rp_filter", "0"})
	}
	if err := sysctls(d.vpcPath, conf); err != nil {
		return err
	}
	if err := d.vpc.LinkSetUp(vl); err != nil {
		return fmt.Errorf("bring %s up: %w", vpcName, err)
	}
	// The fabric knows each ENI's MAC; it never needs ARP to deliver.
	neigh := &netlink.Neigh{LinkIndex: vl.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT, IP: nic.PrimaryIP.AsSlice(), HardwareAddr: nic.MAC}
	if err := d.vpc.NeighSet(neigh); err != nil {
		return fmt.Errorf("neighbour %s on %s: %w", nic.PrimaryIP, vpcName, err)
	}
	if err := d.vpc.RouteReplace(&netlink.Route{Dst: ipNet(netip.PrefixFrom(nic.PrimaryIP, 32)), LinkIndex: vl.Attrs().Index, Scope: netlink.SCOPE_LINK}); err != nil {
		return fmt.Errorf("route %s to %s: %w", nic.PrimaryIP, vpcName, err)
	}
	for p := range e.prefixes {
		if err := d.routeLocked(e, p); err != nil {
			return err
		}
	}
	gw := routerAddr(nic.Subnet)
	if d.routers[gw] == 0 {
		if err := addLoopback(d.vpc, gw); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("subnet router %s: %w", gw, err)
		}
	}
	d.routers[gw]++
	if alias != "" {
		return setAlias(n.h, ifName, alias)
	}
	if isPrimaryNIC(nic) {
		if err := configurePrimary(n.h, ifName, nic); err != nil {
			return err
		}
	}
	return d.plugIPv6(n, e)
}

// configurePrimary does what cloud-init does with the primary ENI.
func configurePrimary(h *netlink.Handle, ifName string, nic NIC) error {
	l, err := h.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("find %s in node: %w", ifName, err)
	}
	addr := netip.PrefixFrom(nic.PrimaryIP, nic.Subnet.Bits())
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(addr)}); err != nil {
		return fmt.Errorf("address %s on %s: %w", addr, ifName, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("bring %s up: %w", ifName, err)
	}
	def := &netlink.Route{Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")), Gw: routerAddr(nic.Subnet).AsSlice(), LinkIndex: l.Attrs().Index}
	if err := h.RouteReplace(def); err != nil {
		return fmt.Errorf("default route via %s on %s: %w", routerAddr(nic.Subnet), ifName, err)
	}
	return nil
}

// DetachNIC unplugs an ENI: its ethN disappears from the instance. The
// ENI's assigned addresses are remembered for a later attach.
func (d *Dataplane) DetachNIC(eniID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.enis[eniID]
	if !ok || e.node == "" {
		return nil
	}
	node := e.node
	if err := errors.Join(d.unplugBranchesLocked(eniID), d.unplug(e)); err != nil {
		return fmt.Errorf("detach %s: %w", eniID, err)
	}
	d.log.Info("ENI unplugged", "instance", node, "eni", eniID, "device", e.nic.DeviceIndex)
	return d.applySGLocked()
}

func (d *Dataplane) unplug(e *eni) error {
	var errs []error
	if l, err := d.vpc.LinkByName(e.link); err == nil {
		// Deleting one end of a veth removes both, and every route via it.
		if err := d.vpc.LinkDel(l); err != nil {
			errs = append(errs, fmt.Errorf("delete link %s: %w", e.link, err))
		}
	}
	gw := routerAddr(e.nic.Subnet)
	if d.routers[gw]--; d.routers[gw] <= 0 {
		delete(d.routers, gw)
		if err := delLoopback(d.vpc, gw); err != nil {
			errs = append(errs, err)
		}
	}
	e.node, e.link = "", ""
	return errors.Join(errs...)
}

// RouteAddresses makes the VPC deliver the given addresses (/32) and
// prefixes (/28) to the ENI and accept them as its sources. Addresses of an
// ENI that is not attached yet are routed when it is.
func (d *Dataplane) RouteAddresses(eniID string, prefixes []netip.Prefix) error {
	if err := d.checkFamilies(eniID, prefixes); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	e := d.eniLocked(eniID)
	var errs []error
	for _, p := range prefixes {
		p = p.Masked()
		e.prefixes[p] = true
		if e.node != "" {
			errs = append(errs, d.routeLocked(e, p))
		}
	}
	return errors.Join(errs...)
}

func (d *Dataplane) routeLocked(e *eni, p netip.Prefix) error {
	if p == netip.PrefixFrom(e.nic.PrimaryIP, 32) {
		return nil
	}
	if p.Addr().Is6() {
		return d.routeV6Locked(e, p)
	}
	l, err := d.vpc.LinkByName(e.link)
	if err != nil {
		return fmt.Errorf("route %v: find %s: %w", p, e.link, err)
	}
	r := &netlink.Route{Dst: ipNet(p), Gw: e.nic.PrimaryIP.AsSlice(), LinkIndex: l.Attrs().Index, Flags: int(netlink.FLAG_ONLINK)}
	if err := d.vpc.RouteReplace(r); err != nil {
		return fmt.Errorf("route %v to %s: %w", p, e.id, err)
	}
	return nil
}

// UnrouteAddresses withdraws addresses from an ENI: packets to them are no
// longer delivered and packets from them are dropped.
func (d *Dataplane) UnrouteAddresses(eniID string, prefixes []netip.Prefix) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.enis[eniID]
	if !ok {
		return nil
	}
	var errs []error
	for _, p := range prefixes {
		p = p.Masked()
		delete(e.prefixes, p)
		if e.node == "" || p == netip.PrefixFrom(e.nic.PrimaryIP, 32) {
			continue
		}
		l, err := d.vpc.LinkByName(e.link)
		if err != nil {
			continue
		}
		// Only this ENI's route: the address may already belong to another.
		r := &netlink.Route{Dst: ipNet(p), Gw: e.nic.PrimaryIP.AsSlice(), LinkIndex: l.Attrs().Index}
		if p.Addr().Is6() {
			r = unrouteV6(e, p, l.Attrs().Index)
		}
		if err := d.vpc.RouteDel(r); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("unroute %v from %s: %w", p, eniID, err))
		}
	}
	return errors.Join(errs...)
}

// ForgetENI drops everything known about an ENI (it was deleted in EC2).
func (d *Dataplane) ForgetENI(eniID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.enis[eniID]
	if !ok {
		return nil
	}
	var err error
	if e.node != "" {
		err = d.unplug(e)
	}
	delete(d.enis, eniID)
	return err
}

// RoutedAddresses returns the prefixes the VPC currently delivers to the ENI
// (its primary address included while attached), sorted.
func (d *Dataplane) RoutedAddresses(eniID string) []netip.Prefix {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.enis[eniID]
	if !ok || e.node == "" {
		return nil
	}
	out := []netip.Prefix{netip.PrefixFrom(e.nic.PrimaryIP, 32)}
	for p := range e.prefixes {
		if p != out[0] {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr().Less(out[j].Addr()) })
	return out
}
