package networkutils

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
)

// do runs f inside netns and fails the test on error.
func do(t *testing.T, netns ns.NetNS, f func() error) {
	t.Helper()
	if err := netns.Do(func(ns.NetNS) error { return f() }); err != nil {
		t.Fatal(err)
	}
}

// sh runs a command inside netns (the child inherits the thread's netns).
func sh(t *testing.T, netns ns.NetNS, name string, args ...string) string {
	t.Helper()
	var out []byte
	do(t, netns, func() error {
		var err error
		out, err = exec.Command(name, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
		}
		return nil
	})
	return string(out)
}

func mustMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// veth creates a veth pair: name (with mac) in a, peer in b, both up, and
// each side given the listed addresses.
func veth(t *testing.T, a ns.NetNS, name, mac string, aAddrs []string, b ns.NetNS, peer string, bAddrs []string) {
	t.Helper()
	do(t, a, func() error {
		l := &netlink.Veth{
			LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mustMAC(t, mac), MTU: 1500},
			PeerName:  peer, PeerNamespace: netlink.NsFd(int(b.Fd())),
		}
		if err := netlink.LinkAdd(l); err != nil {
			return fmt.Errorf("add veth %s: %w", name, err)
		}
		return upWithAddrs(name, aAddrs)
	})
	do(t, b, func() error { return upWithAddrs(peer, bAddrs) })
}

func upWithAddrs(name string, addrs []string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		p := netip.MustParsePrefix(a)
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: prefixToIPNet(p)}); err != nil {
			return fmt.Errorf("add %s to %s: %w", a, name, err)
		}
	}
	return netlink.LinkSetUp(l)
}

// routeStrings lists the routes of a table as `ip route`-like lines.
func routeStrings(t *testing.T, fam, table int) []string {
	t.Helper()
	rs, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		dst := "default"
		if p := ipNetToPrefix(r.Dst); p.IsValid() && p.Bits() > 0 {
			dst = p.String()
		}
		s := dst
		if r.Gw != nil {
			s += " via " + r.Gw.String()
		}
		l, err := netlink.LinkByIndex(r.LinkIndex)
		if err == nil {
			s += " dev " + l.Attrs().Name
		}
		if r.Scope == netlink.SCOPE_LINK {
			s += " scope link"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// ruleStrings lists ip rules of a family, optionally only some priorities.
func ruleStrings(t *testing.T, fam int, prios ...int) []string {
	t.Helper()
	rs, err := netlink.RuleList(fam)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rs {
		if len(prios) > 0 && !slices.Contains(prios, r.Priority) {
			continue
		}
		out = append(out, ruleKeyOf(r).String())
	}
	return out
}

func addrStrings(t *testing.T, name string, fam int) []string {
	t.Helper()
	l, err := netlink.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	as, err := netlink.AddrList(l, fam)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range as {
		p := ipNetToPrefix(a.IPNet)
		if p.Addr().IsLinkLocalUnicast() {
			continue
		}
		out = append(out, p.String())
	}
	return out
}
