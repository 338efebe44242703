package podnet

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vishvananda/netlink"
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
// belongs to another sandbox (the VLAN link carries its mark, other),
// often another pod's branch ENI: that sandbox's VLAN link, table and the
// table's rules stay. The DEL removes only what names its own pod: the
// iif rules of its host veth's names into the table and, unless the
// address is now routed through another link, the address's rules.
func teardownReusedVLAN(h *netlink.Handle, ifc Interface, vlanID int, other string) (kept string, err error) {
	table := BranchTable(vlanID)
	fam := family(ifc.Address)
	kept = fmt.Sprintf("%s is marked %q: VLAN id %d, its table %d and their rules are that sandbox's", VLANLinkName(vlanID), other, vlanID, table)
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
