package podnet

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/nldump"
	"golang.org/x/sys/unix"
)

// releaseVLAN removes a DEL's branch wiring of VLAN id vlanID as far as
// the kernel shows it is the DEL's own (docs/compatibility.md, "Plugin
// (aws-cni) and runtime input"). A VLAN id goes to another pod's branch
// ENI as soon as it is released, and that pod's ADD holds its own pod
// lock, not this pod's: whatever else is in the table, or named by its
// rules, may be that pod's (the VLAN lock, see lockVLAN, keeps our ADDs
// out meanwhile; upstream's plugin ignores it). So:
//   - link, the VLAN link the DEL found to be its own (nil when there was
//     none), goes by its index, never a newer link of the name; a
//     stand-in stays (see StandinAlias);
//   - of the table, only the routes through link or through one of the
//     pod's host veths vethIndexes go;
//   - of the table's iif rules, those of the pod's host veth names
//     vethNames go, and the VLAN link name's only while no other link has
//     that name.
func releaseVLAN(h *netlink.Handle, link netlink.Link, vlanID, fam int, vethNames []string, vethIndexes []int) error {
	table := BranchTable(vlanID)
	name := VLANLinkName(vlanID)
	own := append([]int(nil), vethIndexes...)
	var errs []error
	if link != nil {
		own = append(own, link.Attrs().Index)
		if !isStandin(link) {
			if err := h.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
				errs = append(errs, fmt.Errorf("delete VLAN link %s: %w", name, err))
			}
		}
	}
	errs = append(errs, deleteRoutesVia(h, table, fam, own))
	for _, n := range vethNames {
		errs = append(errs, deleteRules(h, iifRule(n, table, fam)))
	}
	now, err := h.LinkByName(name)
	switch {
	case isNotFound(err):
	case err != nil:
		return errors.Join(append(errs, fmt.Errorf("find VLAN link %s: %w", name, err))...)
	case link == nil || now.Attrs().Index != link.Attrs().Index:
		// Another pod's VLAN link, and the rule of its name its own.
		return errors.Join(errs...)
	}
	if testHookVLANNameChecked != nil {
		testHookVLANNameChecked()
	}
	return errors.Join(append(errs, deleteRules(h, iifRule(name, table, fam)))...)
}

// deleteRoutesVia deletes the routes of one family in table whose device
// is one of the links indexes.
func deleteRoutesVia(h *netlink.Handle, table, fam int, indexes []int) error {
	if len(indexes) == 0 {
		return nil
	}
	routes, err := nldump.Retry(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(fam, &netlink.Route{Table: table}, netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return fmt.Errorf("list routes of table %d: %w", table, err)
	}
	var errs []error
	for _, r := range routes {
		if r.LinkIndex == 0 || !slices.Contains(indexes, r.LinkIndex) {
			continue
		}
		if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("delete route %s table %d: %w", r.Dst, table, err))
		}
	}
	return errors.Join(errs...)
}

// ownVethIndexes returns the ifindexes of those of the host veths names
// that may be sandbox's (see lookupHostVeth): existing, and not marked as
// another sandbox's.
func ownVethIndexes(h *netlink.Handle, sandbox string, names []string) ([]int, error) {
	var idx []int
	for _, n := range names {
		veth, err := lookupHostVeth(h, n, sandbox)
		if err != nil {
			return nil, err
		}
		if veth.index != 0 && veth.other == "" && !slices.Contains(idx, veth.index) {
			idx = append(idx, veth.index)
		}
	}
	return idx, nil
}
