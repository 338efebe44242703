// Package podnettest reads a network namespace's state in a stable textual
// form, so tests of pod wiring can compare the whole state with what is
// expected and print a readable diff.
package podnettest

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Snapshot returns the links, addresses, routes, permanent neighbours and
// non-default policy rules of the namespace at path, one sorted line each:
//
//	link eth0 up mtu 9001
//	addr eth0 10.0.0.5/32
//	route main 0.0.0.0/0 via 169.254.1.1 dev eth0
//	neigh eth0 169.254.1.1 lladdr 02:… permanent
//	rule 512 to 10.0.0.5/32 lookup main
//
// Loopback, the local table, IPv6 link-local addresses, routes the kernel
// derives from addresses, and the kernel's default rules are left out: nothing the plugin creates lives there.
func Snapshot(path string) ([]string, error) {
	var lines []string
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		var err error
		// A dump the kernel interrupted (a link changed mid-read) is read
		// again, so a snapshot is never a partial view.
		for range 5 {
			if lines, err = snapshot(); !errors.Is(err, netlink.ErrDumpInterrupted) {
				break
			}
		}
		return err
	})
	return lines, err
}

func snapshot() ([]string, error) {
	var out []string
	links, err := netlink.LinkList()
	if err != nil {
		return nil, fmt.Errorf("list links: %w", err)
	}
	names := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		names[a.Index] = a.Name
		if a.Name == "lo" {
			continue
		}
		state := "down"
		if a.Flags&net.FlagUp != 0 {
			state = "up"
		}
		out = append(out, fmt.Sprintf("link %s %s %s mtu %d", a.Name, l.Type(), state, a.MTU))
		addrs, err := netlink.AddrList(l, unix.AF_UNSPEC)
		if err != nil {
			return nil, fmt.Errorf("list addresses of %s: %w", a.Name, err)
		}
		for _, ad := range addrs {
			if ad.IP.IsLinkLocalUnicast() && ad.IP.To4() == nil {
				continue
			}
			out = append(out, fmt.Sprintf("addr %s %s", a.Name, ad.IPNet))
		}
		neighs, err := netlink.NeighList(a.Index, unix.AF_UNSPEC)
		if err != nil {
			return nil, fmt.Errorf("list neighbours of %s: %w", a.Name, err)
		}
		for _, n := range neighs {
			if n.State&netlink.NUD_PERMANENT != 0 {
				out = append(out, fmt.Sprintf("neigh %s %s lladdr %s permanent", a.Name, n.IP, n.HardwareAddr))
			}
		}
	}
	for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
		routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("list routes: %w", err)
		}
		for _, r := range routes {
			// Routes the kernel derives from addresses are not ours.
			if r.Table == unix.RT_TABLE_LOCAL || r.Protocol == unix.RTPROT_KERNEL {
				continue
			}
			if r.Dst != nil && r.Dst.IP.IsMulticast() {
				continue
			}
			out = append(out, describeRoute(r, fam, names))
		}
		rules, err := netlink.RuleList(fam)
		if err != nil {
			return nil, fmt.Errorf("list rules: %w", err)
		}
		for _, r := range rules {
			if isDefaultRule(r) {
				continue
			}
			out = append(out, describeRule(r))
		}
	}
	slices.Sort(out)
	return out, nil
}

func tableName(t int) string {
	switch t {
	case unix.RT_TABLE_MAIN:
		return "main"
	case unix.RT_TABLE_LOCAL:
		return "local"
	}
	return fmt.Sprint(t)
}

func describeRoute(r netlink.Route, fam int, names map[int]string) string {
	dst := "0.0.0.0/0"
	if fam == unix.AF_INET6 {
		dst = "::/0"
	}
	if r.Dst != nil {
		dst = r.Dst.String()
	}
	s := fmt.Sprintf("route %s %s", tableName(r.Table), dst)
	if r.Gw != nil {
		s += " via " + r.Gw.String()
	}
	if r.LinkIndex != 0 {
		s += " dev " + names[r.LinkIndex]
	}
	// IPv6 routes carry no scope: the kernel reports universe for all.
	if r.Scope == netlink.SCOPE_LINK && fam == unix.AF_INET {
		s += " scope link"
	}
	return s
}

// isDefaultRule reports the rules every new namespace starts with.
func isDefaultRule(r netlink.Rule) bool {
	switch {
	case r.Priority == 0 && r.Table == unix.RT_TABLE_LOCAL && r.Src == nil && r.Dst == nil && r.IifName == "":
		return true
	case r.Priority == 32766 && r.Table == unix.RT_TABLE_MAIN && r.Src == nil:
		return true
	case r.Priority == 32767 && r.Table == unix.RT_TABLE_DEFAULT && r.Src == nil:
		return true
	}
	return false
}

func describeRule(r netlink.Rule) string {
	parts := []string{"rule", fmt.Sprint(r.Priority)}
	if r.Family == unix.AF_INET6 {
		parts = append(parts, "v6")
	}
	if r.Src != nil {
		parts = append(parts, "from", r.Src.String())
	}
	if r.Dst != nil {
		parts = append(parts, "to", r.Dst.String())
	}
	if r.IifName != "" {
		parts = append(parts, "iif", r.IifName)
	}
	parts = append(parts, "lookup", tableName(r.Table))
	return strings.Join(parts, " ")
}

// Diff returns the lines only in want ("- ") and only in got ("+ "), or ""
// when both hold the same lines.
func Diff(want, got []string) string {
	w := slices.Clone(want)
	slices.Sort(w)
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(got, l) {
			fmt.Fprintf(&b, "- %s\n", l)
		}
	}
	for _, l := range got {
		if !slices.Contains(w, l) {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	return b.String()
}
