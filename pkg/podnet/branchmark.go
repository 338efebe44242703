package podnet

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/nldump"
)

// markVLANLink gives a VLAN link the plugin made the sandbox's mark, as ADD
// gives the host veth (SandboxMark): a late DEL of the sandbox can then
// tell its own VLAN link, table and rules from those of a newer sandbox of
// the pod on another branch ENI (docs/compatibility.md, "Plugin (aws-cni)
// and runtime input"). A stand-in keeps its own alias (StandinAlias).
func markVLANLink(link netlink.Link, sandbox string) error {
	mark := SandboxMark(sandbox)
	if mark == "" || isStandin(link) {
		return nil
	}
	if err := netlink.LinkSetAlias(link, mark); err != nil {
		return fmt.Errorf("mark VLAN link %s as %q: %w", link.Attrs().Name, mark, err)
	}
	return nil
}

// ownVLANLink returns the VLAN link of vlanID when it carries sandbox's
// mark, nil otherwise (missing, a stand-in, unmarked or another's).
func ownVLANLink(h *netlink.Handle, vlanID int, sandbox string) (netlink.Link, error) {
	mark := SandboxMark(sandbox)
	if mark == "" {
		return nil, nil
	}
	link, err := h.LinkByName(VLANLinkName(vlanID))
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find VLAN link %s: %w", VLANLinkName(vlanID), err)
	}
	if link.Attrs().Alias != mark {
		return nil, nil
	}
	return link, nil
}

// vlanLinkMarked names a VLAN link other than vlanID's that carries mark,
// "" when there is none: the sandbox of that mark uses another branch ENI.
func vlanLinkMarked(h *netlink.Handle, mark string, vlanID int) (string, error) {
	links, err := nldump.Retry(h.LinkList)
	if err != nil {
		return "", fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		a := l.Attrs()
		if a.Alias == mark && a.Name != VLANLinkName(vlanID) && strings.HasPrefix(a.Name, vlanLinkPrefix) {
			return a.Name, nil
		}
	}
	return "", nil
}

// vlanLinkOf returns the VLAN link of vlanID (nil when there is none)
// and, when its mark makes it another sandbox's than sandbox's (see
// otherSandbox), that mark.
func vlanLinkOf(h *netlink.Handle, vlanID int, sandbox string) (netlink.Link, string, error) {
	link, err := h.LinkByName(VLANLinkName(vlanID))
	if isNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("find VLAN link %s: %w", VLANLinkName(vlanID), err)
	}
	return link, otherSandbox(link.Attrs().Alias, sandbox), nil
}

// teardownReusedVLAN is TeardownBranch for a late DEL whose VLAN id now
// belongs to another sandbox (owner says what shows it: the VLAN link
// carries its mark, or the table serves another pod's veth), often another
// pod's branch ENI: that sandbox's VLAN link, table and the table's rules
// stay. The DEL removes only what names its own pod: the iif rules of its
// host veth's names into the table and, unless the address is now routed
// through another link, the address's rules.
func teardownReusedVLAN(h *netlink.Handle, ifc Interface, vlanID int, owner string) (kept string, err error) {
	table := BranchTable(vlanID)
	fam := family(ifc.Address)
	kept = fmt.Sprintf("%s: VLAN id %d, its table %d and their rules are another sandbox's", owner, vlanID, table)
	var errs []error
	for _, name := range branchVethNames(ifc.HostVeth) {
		errs = append(errs, deleteRules(h, iifRule(name, table, fam)))
	}
	dev, err := routedElsewhere(h, hostPrefix(ifc.Address.IP), ifc.HostVeth)
	switch {
	case err != nil:
		errs = append(errs, err)
	case dev != "":
		kept += fmt.Sprintf("; %s is routed to %s: its rules are another pod's", ifc.Address.IP, dev)
	default:
		errs = append(errs, deletePodRules(h, ifc.Address, table))
	}
	return kept, errors.Join(errs...)
}

// otherPodOfTable says what shows that the table of VLAN id vlanID,
// whose VLAN link (ifindex vlanIndex) carries no mark of the DEL's
// sandbox, serves another pod than the DEL's (whose host veths may have
// the names names and whose address is addr): a route through a link
// other than the VLAN link and those veths (strict mode routes the pod
// through its veth), an iif rule of such an existing link, or a from-pod
// rule of another address that main routes through such a link (standard
// mode). "" when nothing does: what the table holds is the DEL's pod's or
// was left by pods that are gone.
func otherPodOfTable(h *netlink.Handle, vlanID, fam, vlanIndex int, names []string, addr net.IP) (string, error) {
	table := BranchTable(vlanID)
	routes, err := nldump.Retry(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(fam, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return "", fmt.Errorf("list routes of table %d: %w", table, err)
	}
	for _, r := range routes {
		if r.LinkIndex == 0 || r.LinkIndex == vlanIndex {
			continue
		}
		link, err := h.LinkByIndex(r.LinkIndex)
		if isNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("link %d of a route of table %d: %w", r.LinkIndex, table, err)
		}
		if name := link.Attrs().Name; !slices.Contains(names, name) {
			return fmt.Sprintf("table %d routes %s through %s, another pod's", table, r.Dst, name), nil
		}
	}
	rules, err := nldump.Retry(func() ([]netlink.Rule, error) {
		return h.RuleListFiltered(fam, &netlink.Rule{Table: table}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return "", fmt.Errorf("list rules into table %d: %w", table, err)
	}
	for _, r := range rules {
		switch {
		case r.Priority == hostcontract.PriorityIIF && r.IifName != "" && r.IifName != VLANLinkName(vlanID) &&
			!slices.Contains(names, r.IifName):
			_, err := h.LinkByName(r.IifName)
			if isNotFound(err) {
				continue
			}
			if err != nil {
				return "", fmt.Errorf("find link %s: %w", r.IifName, err)
			}
			return fmt.Sprintf("rule iif %s lookup %d is another pod's", r.IifName, table), nil
		case r.Priority == hostcontract.PriorityFromPod && r.Src != nil && !r.Src.IP.Equal(addr):
			dev, err := routedElsewhere(h, hostPrefix(r.Src.IP), "")
			if err != nil {
				return "", err
			}
			if dev != "" && !slices.Contains(names, dev) {
				return fmt.Sprintf("rule from %s lookup %d is the pod's behind %s", r.Src.IP, table, dev), nil
			}
		}
	}
	return "", nil
}
