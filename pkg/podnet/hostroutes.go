package podnet

import (
	"errors"
	"fmt"
	"net"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/nldump"
	"golang.org/x/sys/unix"
)

// addHostRoutes installs the node side of an address-routed pod: the /32
// (/128) route to the pod through its host veth in main, the to-pod rule
// that keeps traffic for local pods in main even when another rule would
// send it to an ENI table, and — for pods of secondary ENIs — the from-pod
// rule that sends the pod's traffic out through its ENI's table. hostIndex
// is hostVeth's ifindex.
func addHostRoutes(h *netlink.Handle, addr *net.IPNet, hostVeth string, hostIndex, table int) error {
	pod := hostPrefix(addr.IP)
	route := &netlink.Route{LinkIndex: hostIndex, Dst: pod, Scope: netlink.SCOPE_LINK, Table: hostcontract.MainTable}
	if err := h.RouteReplace(route); err != nil {
		return fmt.Errorf("route %s dev %s scope link: %w", pod, hostVeth, err)
	}
	if err := addRule(h, toPodRule(pod)); err != nil {
		return err
	}
	// ipamd has just given the address to this pod, so any from-pod rule
	// of it already here is an earlier holder's: a DEL killed after ipamd
	// released the address, whose retry came after the address moved to
	// another ENI and was given again, no longer finds it the old pod's.
	// Left, the older rule comes first and sends the pod's traffic out
	// through the other ENI's table. A delete of any table's rule (table 0
	// matches every table) costs one round trip when there is none, where
	// a dump of every pod's rules would cost several times that.
	if err := deleteRules(h, fromPodRule(pod, anyTable)); err != nil {
		return err
	}
	if table != hostcontract.MainTable {
		if err := addRule(h, fromPodRule(pod, table)); err != nil {
			return err
		}
	}
	return nil
}

// anyTable in a rule to delete matches the rule whatever its table.
const anyTable = unix.RT_TABLE_UNSPEC

// removeHostRoutes undoes addHostRoutes for sandbox (docs/compatibility.md,
// "Per-pod state"). Everything missing is fine: DEL must succeed however
// much of ADD happened. The main-table route is deleted through hostVeth
// only; when that link is gone its routes went with it. An empty hostVeth
// (a result without the host interface) deletes the route whatever its
// device. When hostVeth is marked as another sandbox's and routes addr, the
// address is that sandbox's now: nothing is removed, and kept says why.
// The route goes after the rules, and only once they are gone: while any
// rule is left, a retried DEL still finds the route through the sandbox's
// veth that proves them its.
func removeHostRoutes(h *netlink.Handle, addr *net.IPNet, hostVeth, sandbox string, table int) (kept string, err error) {
	pod := hostPrefix(addr.IP)
	if hostVeth == "" {
		return "", rulesThenRoute(h, addr, table, 0, "")
	}
	veth, err := lookupHostVeth(h, hostVeth, sandbox)
	switch {
	case err != nil:
		return "", err
	case veth.other != "":
		routed, err := routedVia(h, pod, veth.index, hostcontract.MainTable)
		if err != nil {
			return "", err
		}
		if routed {
			return fmt.Sprintf("%s is routed to %s, which is marked %q: its route and rules are that sandbox's", addr.IP, hostVeth, veth.other), nil
		}
		// No route of this sandbox's can go through that veth.
		ownerChecked()
		return "", deletePodRules(h, addr, table)
	case veth.index == 0:
		ownerChecked()
		return "", deletePodRules(h, addr, table)
	}
	return "", rulesThenRoute(h, addr, table, veth.index, hostVeth)
}

// rulesThenRoute deletes addr's rules and then, when they are all gone,
// its route through link index (named dev).
func rulesThenRoute(h *netlink.Handle, addr *net.IPNet, table, index int, dev string) error {
	if err := deletePodRules(h, addr, table); err != nil {
		return err
	}
	return deleteRoute(h, hostPrefix(addr.IP), index, dev)
}

// routedVia reports whether table routes exactly pod through link index.
func routedVia(h *netlink.Handle, pod *net.IPNet, index, table int) (bool, error) {
	routes, err := nldump.Retry(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(family(pod), &netlink.Route{Dst: pod, Table: table, LinkIndex: index},
			netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF)
	})
	if err != nil {
		return false, fmt.Errorf("list routes to %s in table %s: %w", pod, tableName(table), err)
	}
	return len(routes) > 0, nil
}

// deletePodRules deletes the to-pod rule of addr and, for a secondary ENI's
// table, its from-pod rule.
func deletePodRules(h *netlink.Handle, addr *net.IPNet, table int) error {
	pod := hostPrefix(addr.IP)
	err := deleteRules(h, toPodRule(pod))
	if table == hostcontract.MainTable {
		return err
	}
	// Older plugin versions could leave several copies.
	return errors.Join(err, deleteRules(h, fromPodRule(pod, table)))
}

// deleteRoute deletes the scope-link route to pod in main through link
// index, named dev (any link when index is 0).
func deleteRoute(h *netlink.Handle, pod *net.IPNet, index int, dev string) error {
	route := &netlink.Route{Dst: pod, Scope: netlink.SCOPE_LINK, Table: hostcontract.MainTable, LinkIndex: index}
	if err := h.RouteDel(route); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete route %s dev %s table main: %w", pod, dev, err)
	}
	return nil
}

func toPodRule(pod *net.IPNet) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = family(pod)
	r.Dst = pod
	r.Table = hostcontract.MainTable
	r.Priority = hostcontract.PriorityToPod
	return r
}

func fromPodRule(pod *net.IPNet, table int) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = family(pod)
	r.Src = pod
	r.Table = table
	r.Priority = hostcontract.PriorityFromPod
	return r
}

func iifRule(iif string, table, fam int) *netlink.Rule {
	r := netlink.NewRule()
	r.Family = fam
	r.IifName = iif
	r.Table = table
	r.Priority = hostcontract.PriorityIIF
	return r
}

func addRule(h *netlink.Handle, r *netlink.Rule) error {
	if err := h.RuleAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("add %s: %w", describeRule(r), err)
	}
	return nil
}

// maxRuleCopies bounds the delete loop in case the kernel keeps answering.
const maxRuleCopies = 64

// deleteRules deletes every copy of r until the kernel reports none left.
func deleteRules(h *netlink.Handle, r *netlink.Rule) error {
	for range maxRuleCopies {
		err := h.RuleDel(r)
		switch {
		case err == nil:
			continue
		case errors.Is(err, unix.ENOENT):
			return nil
		default:
			return fmt.Errorf("delete %s: %w", describeRule(r), err)
		}
	}
	return fmt.Errorf("delete %s: still present after %d deletions", describeRule(r), maxRuleCopies)
}

// describeRule renders a rule the way `ip rule` shows it, for messages.
func describeRule(r *netlink.Rule) string {
	s := fmt.Sprintf("rule priority %d", r.Priority)
	if r.Src != nil {
		s += " from " + r.Src.IP.String()
	}
	if r.Dst != nil {
		s += " to " + r.Dst.IP.String()
	}
	if r.IifName != "" {
		s += " iif " + r.IifName
	}
	return s + " lookup " + tableName(r.Table)
}

func tableName(t int) string {
	if t == hostcontract.MainTable {
		return "main"
	}
	return fmt.Sprint(t)
}
