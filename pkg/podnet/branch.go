package podnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
	"golang.org/x/sys/unix"
)

// Branch describes a pod that owns a branch ENI of the node's trunk ENI
// (security groups per pod, docs/compatibility.md, "Per-pod state").
type Branch struct {
	// Pod holds exactly one interface; its RouteTable is ignored (the
	// branch's table is VLANTableBase+VLANID).
	Pod    Pod
	VLANID int
	// ENIMAC is the branch ENI's MAC, given to the VLAN link.
	ENIMAC net.HardwareAddr
	// SubnetGW is the branch ENI subnet's router (fe80:ec2::1 for IPv6).
	SubnetGW net.IP
	// ParentIfIndex is the trunk ENI's ifindex on the node.
	ParentIfIndex int
	// Strict forces all of the pod's traffic, even to pods on the same node,
	// through the branch ENI so its security groups always apply. Standard
	// mode lets node-local traffic bypass the ENI.
	Strict bool
}

// BranchTable is the route table of a branch ENI.
func BranchTable(vlanID int) int { return hostcontract.VLANTableBase + vlanID }

// CheckVLANID refuses a VLAN id that is not 802.1Q's (1-4094) or whose
// table, 100+id, is one of the kernel's own: 253 (default), 254 (main),
// 255 (local). Branch wiring replaces the table's default route and DEL
// deletes the table's routes through the VLAN link, so such an id would
// take the node's routes with it.
// No trunk hands out such ids (the resource controller's stay below 121).
func CheckVLANID(vlanID int) error {
	if vlanID < 1 || vlanID > 4094 {
		return fmt.Errorf("VLAN id %d out of range 1-4094", vlanID)
	}
	if t := BranchTable(vlanID); t >= unix.RT_TABLE_DEFAULT {
		return fmt.Errorf("VLAN id %d would use route table %d, one of the kernel's own (253 default, 254 main, 255 local)", vlanID, t)
	}
	return nil
}

func (b Branch) validate() error {
	if err := validatePod(b.Pod); err != nil {
		return err
	}
	switch {
	case len(b.Pod.Interfaces) != 1:
		return fmt.Errorf("branch-ENI pod needs exactly one interface, got %d", len(b.Pod.Interfaces))
	case CheckVLANID(b.VLANID) != nil:
		return CheckVLANID(b.VLANID)
	case len(b.ENIMAC) != 6:
		return fmt.Errorf("branch ENI MAC %q is not a 6-byte MAC", b.ENIMAC)
	case b.SubnetGW == nil:
		return errors.New("branch ENI subnet gateway is missing")
	case b.ParentIfIndex <= 0:
		return fmt.Errorf("trunk ENI ifindex %d is invalid", b.ParentIfIndex)
	case (b.SubnetGW.To4() == nil) != isV6(b.Pod.Interfaces[0].Address):
		return fmt.Errorf("subnet gateway %s and pod address %s are of different families", b.SubnetGW, b.Pod.Interfaces[0].Address.IP)
	}
	return nil
}

// SetupBranch wires a branch-ENI pod: the veth exactly as for other pods,
// a VLAN link for the branch ENI with its own table (100+VLAN id) whose
// default route leads to the branch subnet's router, and the rules that
// steer the pod's traffic into that table. vl creates the VLAN link; nil
// means KernelVLAN.
func SetupBranch(ctx context.Context, b Branch, vl VLANLinker) error {
	if err := b.validate(); err != nil {
		return errors.Join(err, b.Pod.Early.Discard())
	}
	if vl == nil {
		vl = KernelVLAN{}
	}
	early, err := claimEarly(b.Pod)
	if err != nil {
		return err
	}
	host := early.takeHost()
	defer host.Close()

	ifc := b.Pod.Interfaces[0]
	fam := family(ifc.Address)
	table := BranchTable(b.VLANID)
	hostIndex, err := setupVeth(ctx, host, b.Pod, ifc, early)
	if err != nil {
		return err
	}
	// The pod lock covers the node side only, as in Setup.
	lock := lockPod(ctx, b.Pod.LockFile, b.Pod.lockName(), addLockWait)
	defer lock.unlock()
	// The VLAN's lock covers the VLAN link, its table and rules: another
	// pod's DEL of the same VLAN id holds it while it tells its own
	// from this pod's.
	vlock := lockVLAN(ctx, b.Pod.LockFile, b.VLANID, addLockWait)
	defer vlock.unlock()
	// The address's lock, last as in TeardownBranch: a late DEL of the
	// address's earlier holder (another pod, maybe on another VLAN) holds
	// it from its check that the address's route and rules are not a
	// newer pod's to their removal, and those are the same rules as this
	// pod's.
	alock := lockAddress(ctx, b.Pod.LockFile, ifc.Address.IP, addLockWait)
	defer alock.unlock()
	if err := lockWaitEnded(ctx, lock, vlock, alock); err != nil {
		return err
	}
	// A previous sandbox of this pod may have left iif rules for the name.
	stale := iifRule(ifc.HostVeth, 0, fam)
	if err := deleteRules(host, stale); err != nil {
		return err
	}
	vlanName := VLANLinkName(b.VLANID)
	if err := setupVLANLink(vl, b, vlanName, table); err != nil {
		return err
	}
	if !b.Strict {
		// A sandbox of the pod wired in strict mode before the node
		// switched, whose DEL has not come, left iif rules that send what
		// the branch ENI delivers to the pod into the branch's table, which
		// in standard mode has no route to the pod.
		if err := deleteRules(host, iifRule("", table, fam)); err != nil {
			return err
		}
		return addHostRoutes(host, ifc.Address, ifc.HostVeth, hostIndex, table)
	}
	// Strict: everything entering from the branch ENI or from the pod is
	// routed by the branch table, so even node-local peers go through EC2.
	pod := hostPrefix(ifc.Address.IP)
	// ipamd has just given the address to this pod, which in strict mode
	// has no rule of it: any is an earlier holder's, such as a sandbox of
	// the pod wired in standard mode before the node switched, whose late
	// DEL finds the veth this sandbox's and keeps them. Left, the to-pod
	// rule sends what the node's other pods send the pod to main, out of
	// the primary ENI whatever ENI their addresses are on.
	if err := errors.Join(deleteRules(host, toPodRule(pod)), deleteRules(host, fromPodRule(pod, anyTable))); err != nil {
		return err
	}
	route := &netlink.Route{LinkIndex: hostIndex, Dst: pod, Scope: netlink.SCOPE_LINK, Table: table}
	if err := host.RouteReplace(route); err != nil {
		return fmt.Errorf("route %s dev %s scope link table %d: %w", pod, ifc.HostVeth, table, err)
	}
	for _, iif := range []string{vlanName, ifc.HostVeth} {
		if err := addRule(host, iifRule(iif, table, fam)); err != nil {
			return err
		}
	}
	return nil
}

func setupVLANLink(vl VLANLinker, b Branch, name string, table int) error {
	link, err := branchLink(vl, b, name)
	if err != nil {
		return err
	}
	if err := markVLANLink(link, b.Pod.Sandbox); err != nil {
		return err
	}
	if err := setIfaceSysctls(name); err != nil {
		return fmt.Errorf("VLAN link %s: %w", name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set VLAN link %s up: %w", name, err)
	}
	idx := link.Attrs().Index
	gw := &netlink.Route{LinkIndex: idx, Dst: hostPrefix(b.SubnetGW), Scope: netlink.SCOPE_LINK, Table: table}
	if err := netlink.RouteReplace(gw); err != nil {
		return fmt.Errorf("route %s dev %s scope link table %d: %w", gw.Dst, name, table, err)
	}
	def := &netlink.Route{LinkIndex: idx, Dst: defaultDst(b.SubnetGW.To4() == nil), Gw: b.SubnetGW, Table: table}
	if err := netlink.RouteReplace(def); err != nil {
		return fmt.Errorf("route default via %s dev %s table %d: %w", b.SubnetGW, name, table, err)
	}
	return nil
}

// TeardownBranch removes a branch-ENI pod's node-side state: its VLAN link
// (a stand-in stays, see StandinAlias), the routes of its table through
// that link or the pod's host veth, the priority-10 rules of that table
// naming them, and the address-based routes and rules of either mode, so a
// pod wired under one mode is cleaned up under the other. What else the
// table holds is another pod's (see releaseVLAN).
// pod's RouteTable is ignored; the veth pair is left to the kernel as in
// Teardown. When the pod's host veth is marked as another sandbox's (see
// Pod.Sandbox), that sandbox of the pod owns the branch now, routed yet or
// not: nothing is removed, and kept says why, for the log. alsoVeths are
// more names the pod's host veth may have: a node that switched from strict
// to standard mode gives the pod's new sandbox the netconf prefix's name,
// which a prevResult naming the old `vlan…` veth does not tell.
func TeardownBranch(ctx context.Context, pod Pod, vlanID int, alsoVeths ...string) (kept string, err error) {
	if len(pod.Interfaces) != 1 || pod.Interfaces[0].Address == nil {
		return "", fmt.Errorf("branch-ENI pod needs exactly one interface with an address, got %d", len(pod.Interfaces))
	}
	if err := CheckVLANID(vlanID); err != nil {
		return "", err
	}
	ifc := pod.Interfaces[0]
	table := BranchTable(vlanID)
	fam := family(ifc.Address)
	host := openHost()
	defer host.Close()
	lock := lockPod(ctx, pod.LockFile, pod.lockName(), delLockWait)
	defer lock.unlock()
	veth, mark, err := branchOfOtherSandbox(host, ifc, pod.Sandbox, alsoVeths)
	if err != nil {
		return "", err
	}
	vlock := lockVLAN(ctx, pod.LockFile, vlanID, delLockWait)
	defer vlock.unlock()
	if mark != "" {
		// As below: the address's lock keeps the ADD of a pod given the
		// address since (Setup's host routes, SetupBranch's routes and
		// rules take it) out of teardownOwnVLAN's check and removal.
		alock := lockAddress(ctx, pod.LockFile, ifc.Address.IP, delLockWait)
		defer alock.unlock()
		return teardownOwnVLAN(host, ifc, pod.Sandbox, vlanID, veth, mark, lock.held())
	}
	link, other, err := vlanLinkOf(host, vlanID, pod.Sandbox)
	if err != nil {
		return "", err
	}
	if other != "" {
		return teardownReusedVLAN(host, ifc, vlanID, fmt.Sprintf("%s is marked %q", VLANLinkName(vlanID), other))
	}
	names := append(branchVethNames(ifc.HostVeth), alsoVeths...)
	if link != nil && link.Attrs().Alias != SandboxMark(pod.Sandbox) {
		// No mark tells whose the link is (the local VPC's stand-in, or a
		// link of upstream's plugin): the table's routes and rules do.
		by, err := otherPodOfTable(host, vlanID, fam, link.Attrs().Index, names, ifc.Address.IP)
		if err != nil {
			return "", err
		}
		if by != "" {
			return teardownReusedVLAN(host, ifc, vlanID, by)
		}
	}
	// The address went back to the subnet with the branch ENI: main
	// routing it through a link that is none of the pod's veths shows it
	// is a newer pod's, whose to-pod rule is the same rule as the pod's
	// was. The address's lock keeps that pod's ADD out meanwhile: a
	// regular pod's takes it around its host routes, a branch pod's
	// around its routes and rules (SetupBranch).
	alock := lockAddress(ctx, pod.LockFile, ifc.Address.IP, delLockWait)
	defer alock.unlock()
	dev, err := routedElsewhere(host, hostPrefix(ifc.Address.IP), ifc.HostVeth)
	if err != nil {
		return "", err
	}
	ownerChecked()
	veths, err := ownVethIndexes(host, pod.Sandbox, names)
	if err != nil {
		return "", err
	}
	if dev != "" && !slices.Contains(names, dev) {
		kept = fmt.Sprintf("%s is routed to %s: its route and rules are another pod's", ifc.Address.IP, dev)
	} else {
		kept, err = removeHostRoutes(host, ifc.Address, ifc.HostVeth, pod.Sandbox, table)
	}
	return kept, errors.Join(releaseVLAN(host, link, vlanID, fam, names, veths), err)
}

// branchOfOtherSandbox returns the pod's host veth and its mark when the
// veth is marked as another sandbox's than sandbox's; "" otherwise.
// Whether the veth routes the address yet does not matter: a new sandbox
// often gets the same branch ENI (same VLAN link, table and address), and
// its ADD marks the veth before it builds the VLAN link, table and rules,
// which a late DEL of the old sandbox must not take from under it. The
// veth is looked for under ifc.HostVeth and under the strict mode's name:
// a DEL driven by ipamd's answer names the pod's veth with the netconf's
// prefix whatever the mode. also are more names to look under.
func branchOfOtherSandbox(h *netlink.Handle, ifc Interface, sandbox string, also []string) (name, mark string, err error) {
	if !isPodVethName(ifc.HostVeth) {
		return "", "", nil
	}
	names := append(branchVethNames(ifc.HostVeth), also...)
	return firstOtherSandbox(h, sandbox, names)
}

// branchVethNames is hostVeth, a pod veth's name, and the name strict
// mode gives the pod's veth when it differs.
func branchVethNames(hostVeth string) []string {
	names := []string{hostVeth}
	if !isPodVethName(hostVeth) {
		return names
	}
	if strict := vethname.BranchPrefix + hostVeth[len(hostVeth)-vethname.SuffixLen:]; strict != hostVeth {
		names = append(names, strict)
	}
	return names
}

// teardownOwnVLAN is TeardownBranch for a DEL whose pod's host veth, veth,
// carries another sandbox's mark: that sandbox owns the veth and, when it
// is on the same branch ENI, the VLAN link, table and rules. The DEL's own
// VLAN link (it carries the DEL's mark, see markVLANLink), its table and
// rules go when the other sandbox does not use them: it holds the pod lock
// only while it wires, and its wiring replaces the VLAN link, so under
// the lock (locked) a VLAN link with the DEL's mark is not the other
// sandbox's, wired or to be wired; unlocked, only when the other sandbox
// provably uses another branch ENI (a VLAN link of another id carries its
// mark). Else nothing is removed and kept says why, for the log.
func teardownOwnVLAN(h *netlink.Handle, ifc Interface, sandbox string, vlanID int, veth, mark string, locked bool) (kept string, err error) {
	kept = fmt.Sprintf("%s, the host veth of %s, is marked %q: the branch's VLAN link, table, route and rules are that sandbox's, wired or being wired",
		veth, ifc.Address.IP, mark)
	own, err := ownVLANLink(h, vlanID, sandbox)
	if err != nil || own == nil {
		return kept, err
	}
	if !locked {
		elsewhere, err := vlanLinkMarked(h, mark, vlanID)
		if err != nil || elsewhere == "" {
			return kept, err
		}
	}
	table := BranchTable(vlanID)
	names := branchVethNames(veth)
	// The address's rules are this DEL's unless the other sandbox, given
	// the same address on its branch ENI, routes it through veth, or the
	// address went back to the subnet with this DEL's branch ENI and main
	// routes it through none of the pod's veths: a newer pod's, whose
	// to-pod rule is the same rule as this DEL's was.
	dev, err := routedElsewhere(h, hostPrefix(ifc.Address.IP), veth)
	if err != nil {
		return kept, err
	}
	ownerChecked()
	if dev != "" && !slices.Contains(names, dev) {
		kept = fmt.Sprintf("%s is routed to %s: its route and rules are another pod's", ifc.Address.IP, dev)
	} else {
		kept, err = removeHostRoutes(h, ifc.Address, veth, sandbox, table)
	}
	// veth's routes are the other sandbox's; the rules of its name into
	// this table are this DEL's, as under the lock the other sandbox does
	// not use this VLAN link.
	return kept, errors.Join(releaseVLAN(h, own, vlanID, family(ifc.Address), names, nil), err)
}

// UndoBranch reverses a SetupBranch that failed part way: TeardownBranch,
// then the pod's veth pair if it is provably the plugin's (see Undo).
func UndoBranch(ctx context.Context, pod Pod, vlanID int) (skipped []string, err error) {
	kept, err := TeardownBranch(ctx, pod, vlanID)
	skipped, perr := deletePairs(pod)
	if kept != "" {
		skipped = append(skipped, kept)
	}
	return skipped, errors.Join(err, perr)
}
