package dataplane

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"

	"github.com/vishvananda/netlink"
)

// The branch-ENI stand-in (docs/compatibility.md, "Security groups for
// pods"): this kernel has no 802.1Q, so a branch ENI associated with a trunk
// that is attached to a node appears in the node as a veth named
// vlan.eth.<vlan> with the branch's MAC and this alias. Its VPC-side peer is
// the branch ENI's port: routed like any ENI, filtered by the branch's
// security groups. The plugin adopts such a link instead of making a VLAN.
const (
	StandinAlias = "vpcsim:branch-standin"
)

// StandinName is the node-side name of a branch's stand-in link, the name
// the plugin gives a VLAN link.
func StandinName(vlan int) string { return fmt.Sprintf("vlan.eth.%d", vlan) }

// Branch is a branch ENI associated with a trunk ENI.
type Branch struct {
	ENIID      string
	TrunkENIID string
	VLAN       int
	MAC        net.HardwareAddr
	PrimaryIP  netip.Addr
	Subnet     netip.Prefix
}

type branch struct {
	trunkID string
	vlan    int
}

func validBranch(b Branch) error {
	switch {
	case b.ENIID == "" || b.TrunkENIID == "":
		return fmt.Errorf("branch %q of trunk %q: both ids are required", b.ENIID, b.TrunkENIID)
	case b.VLAN < 1 || b.VLAN > 4094:
		return fmt.Errorf("branch %s: VLAN %d outside 1-4094", b.ENIID, b.VLAN)
	case len(b.MAC) != 6:
		return fmt.Errorf("branch %s: MAC %q is not a 6-byte MAC", b.ENIID, b.MAC)
	case !b.PrimaryIP.Is4() || !b.Subnet.Contains(b.PrimaryIP):
		return fmt.Errorf("branch %s: primary IP %v not an IPv4 address of subnet %v", b.ENIID, b.PrimaryIP, b.Subnet)
	}
	return nil
}

// AssociateBranch records a branch and, when its trunk is attached to a
// node, hot-plugs its stand-in link there.
func (d *Dataplane) AssociateBranch(b Branch) error {
	if err := validBranch(b); err != nil {
		return fmt.Errorf("associate: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return errors.New("associate branch: data plane closed")
	}
	if old, ok := d.branches[b.ENIID]; ok && (old.trunkID != b.TrunkENIID || old.vlan != b.VLAN) {
		if err := d.unplugBranchLocked(b.ENIID); err != nil {
			return err
		}
	}
	d.branches[b.ENIID] = branch{trunkID: b.TrunkENIID, vlan: b.VLAN}
	e := d.eniLocked(b.ENIID)
	e.nic = NIC{ENIID: b.ENIID, MAC: b.MAC, PrimaryIP: b.PrimaryIP, Subnet: b.Subnet, DeviceIndex: -1}
	return errors.Join(d.plugBranchLocked(b.ENIID), d.applySGLocked())
}

// DisassociateBranch removes a branch's stand-in link; the branch ENI's
// addresses are remembered as for a detached ENI.
func (d *Dataplane) DisassociateBranch(eniID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.branches[eniID]; !ok {
		return nil
	}
	err := d.unplugBranchLocked(eniID)
	delete(d.branches, eniID)
	return errors.Join(err, d.applySGLocked())
}

// plugBranchLocked plugs one branch if its trunk is on a node and it is
// not plugged yet.
func (d *Dataplane) plugBranchLocked(eniID string) error {
	b := d.branches[eniID]
	t, ok := d.enis[b.trunkID]
	if !ok || t.node == "" {
		return nil // carried once the trunk is attached
	}
	e := d.enis[eniID]
	if e.node != "" {
		return nil
	}
	n := d.nodes[t.node]
	vpcName := fmt.Sprintf("n%d-v%d", n.seq, b.vlan)
	if err := d.plugAs(n, e, StandinName(b.vlan), vpcName, StandinAlias); err != nil {
		return fmt.Errorf("branch %s stand-in on %s: %w", eniID, t.node, err)
	}
	d.log.Info("branch stand-in hot-plugged", "instance", t.node, "eni", eniID, "trunk", b.trunkID, "vlan", b.vlan, "link", StandinName(b.vlan))
	return nil
}

func (d *Dataplane) unplugBranchLocked(eniID string) error {
	e, ok := d.enis[eniID]
	if !ok || e.node == "" {
		return nil
	}
	node := e.node
	if err := d.unplug(e); err != nil {
		return fmt.Errorf("remove stand-in of branch %s: %w", eniID, err)
	}
	d.log.Info("branch stand-in removed", "instance", node, "eni", eniID, "vlan", d.branches[eniID].vlan)
	return nil
}

// plugBranchesLocked plugs every branch of a trunk that just attached.
func (d *Dataplane) plugBranchesLocked(trunkID string) error {
	var errs []error
	for _, id := range d.branchesOf(trunkID) {
		errs = append(errs, d.plugBranchLocked(id))
	}
	return errors.Join(errs...)
}

// unplugBranchesLocked removes the stand-ins of a trunk that detaches.
func (d *Dataplane) unplugBranchesLocked(trunkID string) error {
	var errs []error
	for _, id := range d.branchesOf(trunkID) {
		errs = append(errs, d.unplugBranchLocked(id))
	}
	return errors.Join(errs...)
}

func (d *Dataplane) branchesOf(trunkID string) []string {
	var out []string
	for id, b := range d.branches {
		if b.trunkID == trunkID {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func setAlias(h *netlink.Handle, ifName, alias string) error {
	l, err := h.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("find %s: %w", ifName, err)
	}
	if err := h.LinkSetAlias(l, alias); err != nil {
		return fmt.Errorf("alias %q on %s: %w", alias, ifName, err)
	}
	return nil
}
