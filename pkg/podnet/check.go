package podnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/nldump"
	"golang.org/x/sys/unix"
)

// CheckError lists every piece of a pod's wiring that is missing or wrong,
// each phrased like the `ip` command would show the expected object.
type CheckError struct {
	Problems []string
}

func (e *CheckError) Error() string {
	return "pod wiring incomplete: " + strings.Join(e.Problems, "; ")
}

// Check verifies that pod is wired as Setup leaves it and reports precisely
// what is missing. It returns a *CheckError for wiring problems and a plain
// error when the state could not be read at all.
func Check(ctx context.Context, pod Pod) error {
	if err := validatePod(pod); err != nil {
		return err
	}
	var problems []string
	for _, ifc := range pod.Interfaces {
		p, err := checkInterface(ifc, pod.NetNS, hostcontract.MainTable, addressRules(ifc.Address, HostTable(ifc.RouteTable)))
		if err != nil {
			return err
		}
		problems = append(problems, p...)
	}
	if len(problems) > 0 {
		return &CheckError{Problems: problems}
	}
	return nil
}

// addressRules are the node rules of an address-routed pod.
func addressRules(addr *net.IPNet, table int) []*netlink.Rule {
	pod := hostPrefix(addr.IP)
	want := []*netlink.Rule{toPodRule(pod)}
	if table != hostcontract.MainTable {
		want = append(want, fromPodRule(pod, table))
	}
	return want
}

// CheckBranch verifies a branch-ENI pod wired by SetupBranch: the veth and
// pod side as for other pods, the VLAN link with its table, and the rules
// of the given mode. subnetGW may be nil when unknown.
func CheckBranch(ctx context.Context, pod Pod, vlanID int, subnetGW net.IP, strict bool) error {
	if err := validatePod(pod); err != nil {
		return err
	}
	if len(pod.Interfaces) != 1 {
		return fmt.Errorf("branch-ENI pod needs exactly one interface, got %d", len(pod.Interfaces))
	}
	ifc := pod.Interfaces[0]
	table := BranchTable(vlanID)
	vlanName := VLANLinkName(vlanID)
	routeTable, rules := hostcontract.MainTable, addressRules(ifc.Address, table)
	if strict {
		fam := family(ifc.Address)
		routeTable = table
		rules = []*netlink.Rule{iifRule(vlanName, table, fam), iifRule(ifc.HostVeth, table, fam)}
	}
	problems, err := checkInterface(ifc, pod.NetNS, routeTable, rules)
	if err != nil {
		return err
	}
	_, idx, up, err := linkState(vlanName)
	if err != nil {
		return err
	}
	switch {
	case idx == 0:
		problems = append(problems, fmt.Sprintf("link %s missing in host netns", vlanName))
	case !up:
		problems = append(problems, fmt.Sprintf("link %s is down in host netns", vlanName))
	}
	if idx != 0 && subnetGW != nil {
		fam := family(ifc.Address)
		def := &netlink.Route{LinkIndex: idx, Dst: defaultDst(subnetGW.To4() == nil), Gw: subnetGW, Table: table}
		if ok, err := hasRoute(fam, def); err != nil {
			return err
		} else if !ok {
			problems = append(problems, fmt.Sprintf("route %s via %s dev %s table %d missing in host netns", def.Dst, subnetGW, vlanName, table))
		}
	}
	if len(problems) > 0 {
		return &CheckError{Problems: problems}
	}
	return nil
}

// checkInterface checks one veth pair: the host end with its route to the
// pod in routeTable and the node rules, then the pod side.
func checkInterface(ifc Interface, netnsPath string, routeTable int, rules []*netlink.Rule) ([]string, error) {
	var problems []string
	missing := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	pod := hostPrefix(ifc.Address.IP)
	fam := family(ifc.Address)

	hostMAC, hostIndex, up, err := linkState(ifc.HostVeth)
	if err != nil {
		return nil, err
	}
	switch {
	case hostIndex == 0:
		missing("link %s missing in host netns", ifc.HostVeth)
	case !up:
		missing("link %s is down in host netns", ifc.HostVeth)
	}
	if hostIndex != 0 {
		ok, err := hasRoute(fam, &netlink.Route{LinkIndex: hostIndex, Dst: pod, Scope: netlink.SCOPE_LINK, Table: routeTable})
		if err != nil {
			return nil, err
		}
		if !ok {
			missing("route %s dev %s scope link%s missing in host netns", pod, ifc.HostVeth, tableSuffix(routeTable))
		}
	}
	p, err := missingRules(fam, rules, "host netns")
	if err != nil {
		return nil, err
	}
	problems = append(problems, p...)

	err = ns.WithNetNSPath(netnsPath, func(ns.NetNS) error {
		p, err := checkPodSide(ifc, hostMAC)
		problems = append(problems, p...)
		return err
	})
	var notExist ns.NSPathNotExistErr
	if errors.As(err, &notExist) {
		return append(problems, fmt.Sprintf("pod netns %s missing", netnsPath)), nil
	}
	if err != nil {
		return nil, fmt.Errorf("pod netns %s: %w", netnsPath, err)
	}
	return problems, nil
}

func checkPodSide(ifc Interface, hostMAC net.HardwareAddr) ([]string, error) {
	var problems []string
	missing := func(format string, a ...any) {
		problems = append(problems, fmt.Sprintf(format, a...)+" in pod netns")
	}
	fam := family(ifc.Address)
	gw := Gateway(ifc.Index, isV6(ifc.Address))
	name := ifc.ContainerIf

	_, idx, up, err := linkState(name)
	if err != nil {
		return nil, err
	}
	if idx == 0 {
		missing("link %s missing", name)
		return problems, nil
	}
	if !up {
		missing("link %s is down", name)
	}
	link, err := netlink.LinkByIndex(idx)
	if err != nil {
		return nil, fmt.Errorf("read link %s: %w", name, err)
	}
	addrs, err := nldump.Retry(func() ([]netlink.Addr, error) { return netlink.AddrList(link, fam) })
	if err != nil {
		return nil, fmt.Errorf("list addresses of %s: %w", name, err)
	}
	if !hasAddr(addrs, hostPrefix(ifc.Address.IP)) {
		missing("address %s missing on %s", hostPrefix(ifc.Address.IP), name)
	}
	table := hostcontract.MainTable
	if ifc.Index > 0 {
		table = ifc.Index
	}
	gwRoute := &netlink.Route{LinkIndex: idx, Dst: hostPrefix(gw), Scope: netlink.SCOPE_LINK, Table: table}
	if ok, err := hasRoute(fam, gwRoute); err != nil {
		return nil, err
	} else if !ok {
		missing("route %s dev %s scope link%s missing", gwRoute.Dst, name, tableSuffix(table))
	}
	def := &netlink.Route{LinkIndex: idx, Dst: defaultDst(isV6(ifc.Address)), Gw: gw, Table: table}
	if ok, err := hasRoute(fam, def); err != nil {
		return nil, err
	} else if !ok {
		missing("route %s via %s dev %s%s missing", def.Dst, gw, name, tableSuffix(table))
	}
	if ifc.Index > 0 {
		r := netlink.NewRule()
		r.Family = fam
		r.Src = hostPrefix(ifc.Address.IP)
		r.Table = table
		r.Priority = hostcontract.PriorityPodFromIf
		p, err := missingRules(fam, []*netlink.Rule{r}, "pod netns")
		if err != nil {
			return nil, err
		}
		problems = append(problems, p...)
	}
	neighs, err := nldump.Retry(func() ([]netlink.Neigh, error) { return netlink.NeighList(idx, fam) })
	if err != nil {
		return nil, fmt.Errorf("list neighbours of %s: %w", name, err)
	}
	if !hasPermanentNeigh(neighs, gw, hostMAC) {
		mac := "<host veth MAC>"
		if hostMAC != nil {
			mac = hostMAC.String()
		}
		missing("permanent neighbour %s lladdr %s dev %s missing", gw, mac, name)
	}
	return problems, nil
}

func tableSuffix(t int) string {
	if t == hostcontract.MainTable {
		return ""
	}
	return fmt.Sprintf(" table %d", t)
}

// linkState returns the MAC, index and admin state of a link of the calling
// thread's namespace; index 0 means the link does not exist.
func linkState(name string) (net.HardwareAddr, int, bool, error) {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil, 0, false, nil
		}
		return nil, 0, false, fmt.Errorf("find link %s: %w", name, err)
	}
	a := link.Attrs()
	return a.HardwareAddr, a.Index, a.Flags&net.FlagUp != 0, nil
}

func hasAddr(addrs []netlink.Addr, want *net.IPNet) bool {
	for _, a := range addrs {
		if a.IPNet != nil && a.IPNet.String() == want.String() {
			return true
		}
	}
	return false
}

func hasRoute(fam int, want *netlink.Route) (bool, error) {
	filter := &netlink.Route{Table: want.Table, LinkIndex: want.LinkIndex}
	routes, err := nldump.Retry(func() ([]netlink.Route, error) {
		return netlink.RouteListFiltered(fam, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_OIF)
	})
	if err != nil {
		return false, fmt.Errorf("list routes: %w", err)
	}
	for _, r := range routes {
		if sameDst(r.Dst, want.Dst) && r.Gw.Equal(want.Gw) && (want.Gw != nil || fam == unix.AF_INET6 || r.Scope == want.Scope) {
			return true, nil
		}
	}
	return false, nil
}

// sameDst compares route destinations; the kernel reports a default route's
// destination either as nil or as 0.0.0.0/0 depending on the version.
func sameDst(got, want *net.IPNet) bool {
	if got == nil || want == nil {
		isDefault := func(n *net.IPNet) bool {
			if n == nil {
				return true
			}
			ones, _ := n.Mask.Size()
			return ones == 0
		}
		return isDefault(got) && isDefault(want)
	}
	return got.String() == want.String()
}

func hasPermanentNeigh(neighs []netlink.Neigh, ip net.IP, mac net.HardwareAddr) bool {
	for _, n := range neighs {
		if n.IP.Equal(ip) && n.State&netlink.NUD_PERMANENT != 0 && (mac == nil || n.HardwareAddr.String() == mac.String()) {
			return true
		}
	}
	return false
}

// missingRules describes each rule of want that the namespace lacks.
func missingRules(fam int, want []*netlink.Rule, where string) ([]string, error) {
	rules, err := nldump.Retry(func() ([]netlink.Rule, error) { return netlink.RuleList(fam) })
	if err != nil {
		return nil, fmt.Errorf("list rules: %w", err)
	}
	var problems []string
	for _, w := range want {
		found := false
		for _, r := range rules {
			if sameRule(r, w) {
				found = true
				break
			}
		}
		if !found {
			problems = append(problems, describeRule(w)+" missing in "+where)
		}
	}
	return problems, nil
}

func sameRule(got netlink.Rule, want *netlink.Rule) bool {
	eqNet := func(a, b *net.IPNet) bool {
		if a == nil || b == nil {
			return a == nil && b == nil
		}
		return a.String() == b.String()
	}
	return got.Priority == want.Priority && got.Table == want.Table &&
		eqNet(got.Src, want.Src) && eqNet(got.Dst, want.Dst) && got.IifName == want.IifName
}
