package podnet

import (
	"context"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// branchEnv is a node with a trunk ENI (eth1) cabled to a "VPC" namespace
// that owns the branch subnet's router 10.2.0.1 and knows the branch ENI's
// MAC, as EC2 does.
type branchEnv struct {
	node   node
	vpc    ns.NetNS
	trunk  int
	eniMAC net.HardwareAddr
}

const (
	branchVLAN  = 7
	branchPodIP = "10.2.0.55"
	branchGW    = "10.2.0.1"
)

func newBranchEnv(t *testing.T) branchEnv {
	t.Helper()
	e := branchEnv{node: newNode(t, "192.168.0.10"), vpc: testutil.NewNS(t)}
	e.eniMAC, _ = net.ParseMAC("02:42:0a:02:00:37")
	e.node.do(t, func() error {
		veth := &netlink.Veth{
			LinkAttrs:     netlink.LinkAttrs{Name: "eth1"},
			PeerName:      "vpc0",
			PeerNamespace: netlink.NsFd(int(e.vpc.Fd())),
		}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		l, err := netlink.LinkByName("eth1")
		if err != nil {
			return err
		}
		e.trunk = l.Attrs().Index
		return netlink.LinkSetUp(l)
	})
	err := e.vpc.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("vpc0")
		if err != nil {
			return err
		}
		gw, _ := netlink.ParseIPNet(branchGW + "/24")
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: gw}); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		if err := netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: hostPrefix(e.node.ip)}); err != nil {
			return err
		}
		return netlink.NeighSet(&netlink.Neigh{
			LinkIndex: l.Attrs().Index, Family: unix.AF_INET, State: netlink.NUD_PERMANENT,
			IP: net.ParseIP(branchPodIP), HardwareAddr: e.eniMAC,
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newBranchNode is newBranchEnv in a mode: in strict mode ipamd has moved
// the local rule to 20 (moveLocalRule).
func newBranchNode(t *testing.T, strict bool) branchEnv {
	t.Helper()
	e := newBranchEnv(t)
	if strict {
		moveLocalRule(t, e.node)
	}
	return e
}

// branchVeth is the host veth name of pod default/pod in a mode.
func branchVeth(strict bool, pod string) string {
	prefix := "eni"
	if strict {
		prefix = vethname.BranchPrefix
	}
	return vethname.HostVethName(prefix, "default", pod, 0)
}

func (e branchEnv) branch(podNS ns.NetNS, strict bool) Branch {
	ifc := iface("default", "sg-pod", branchPodIP, 0, 0)
	ifc.HostVeth = branchVeth(strict, "sg-pod")
	return Branch{
		Pod:           Pod{NetNS: podNS.Path(), MTU: 9001, Interfaces: []Interface{ifc}},
		VLANID:        branchVLAN,
		ENIMAC:        e.eniMAC,
		SubnetGW:      net.ParseIP(branchGW).To4(),
		ParentIfIndex: e.trunk,
		Strict:        strict,
	}
}

// goneSandboxA wires sg-pod's sandbox A (VLAN 7, branchPodIP) in a mode,
// with lock file lockFile ("" for none), and removes its host veth: A's
// namespace is gone, its DEL not come yet.
func (e branchEnv) goneSandboxA(t *testing.T, strict bool, lockFile string) Branch {
	t.Helper()
	a := e.branch(testutil.NewNS(t), strict)
	a.Pod.Sandbox, a.Pod.LockFile = "sandbox-a", lockFile
	e.node.do(t, func() error { return SetupBranch(context.Background(), a, podnettest.MacvlanVLAN{}) })
	e.node.vethGone(t, a.Pod.Interfaces[0].HostVeth)
	return a
}

// onENI moves b to another branch ENI: VLAN id vlan, MAC mac and, unless
// addr is "", address addr.
func (b Branch) onENI(vlan int, mac, addr string) Branch {
	b.VLANID = vlan
	b.ENIMAC, _ = net.ParseMAC(mac)
	if addr != "" {
		b.Pod.Interfaces = slices.Clone(b.Pod.Interfaces)
		b.Pod.Interfaces[0].Address = hostPrefix(net.ParseIP(addr))
	}
	return b
}

// ofPod gives b the host veth of pod default/pod in b's mode.
func (b Branch) ofPod(pod string) Branch {
	b.Pod.Interfaces = slices.Clone(b.Pod.Interfaces)
	b.Pod.Interfaces[0].HostVeth = branchVeth(b.Strict, pod)
	return b
}

// podC is another pod's branch (other-pod, sandbox C) in a mode, given
// VLAN id 7 with another branch ENI and address 10.2.0.77; not wired.
func (e branchEnv) podC(podNS ns.NetNS, strict bool) Branch {
	c := e.branch(podNS, strict).onENI(branchVLAN, "02:42:0a:02:00:4d", "10.2.0.77").ofPod("other-pod")
	c.Pod.Sandbox = "sandbox-c"
	return c
}

// regularPodW wires regular pod W, given branchPodIP as a secondary
// address of the ENI of table 3, and returns its host veth.
func (e branchEnv) regularPodW(t *testing.T) string {
	t.Helper()
	w := Pod{NetNS: testutil.NewNS(t).Path(), MTU: 9001, Sandbox: "sandbox-w",
		Interfaces: []Interface{iface("default", "web", branchPodIP, 0, 3)}}
	e.node.do(t, func() error { return Setup(context.Background(), w) })
	return w.Interfaces[0].HostVeth
}

// teardownBranch runs TeardownBranch in the node and returns what it
// kept; it must not fail.
func (n node) teardownBranch(t *testing.T, pod Pod, vlanID int, alsoVeths ...string) string {
	t.Helper()
	var kept string
	n.do(t, func() error {
		var err error
		kept, err = TeardownBranch(context.Background(), pod, vlanID, alsoVeths...)
		return err
	})
	return kept
}

// vlanSupport is nil when the node's kernel makes 802.1Q links (it makes
// and removes one on the trunk), else why not.
func (e branchEnv) vlanSupport() error {
	return e.node.run(func() error {
		err := KernelVLAN{}.CreateVLAN("vlanprobe", e.trunk, 4000, e.eniMAC)
		if err == nil {
			return deleteLinkByName("vlanprobe")
		}
		return err
	})
}

// moveLocalRule does what ipamd does on nodes with strict branch ENIs: the
// `lookup local` rule moves from priority 0 to 20, below the iif rules.
func moveLocalRule(t *testing.T, n node) {
	t.Helper()
	n.do(t, func() error {
		r := netlink.NewRule()
		r.Table = unix.RT_TABLE_LOCAL
		r.Priority = hostcontract.PriorityLocal
		if err := netlink.RuleAdd(r); err != nil {
			return err
		}
		r.Priority = 0
		return netlink.RuleDel(r)
	})
}

func TestPrivilegedBranchStrict(t *testing.T) {
	ctx := context.Background()
	e := newBranchEnv(t)
	moveLocalRule(t, e.node)
	podNS := testutil.NewNS(t)
	b := e.branch(podNS, true)
	veth := b.Pod.Interfaces[0].HostVeth
	if !strings.HasPrefix(veth, "vlan") {
		t.Fatalf("strict-mode host veth %q lacks the vlan prefix", veth)
	}
	// A previous sandbox left an iif rule for the same veth name.
	e.node.do(t, func() error { return netlink.RuleAdd(iifRule(veth, 999, unix.AF_INET)) })

	e.node.do(t, func() error { return SetupBranch(ctx, b, podnettest.MacvlanVLAN{}) })
	wantState(t, "node", e.node.ns, wiredBranch(veth, true))
	wantState(t, "pod", podNS, wiredPodV4(9001, branchPodIP, hostMAC(t, e.node, veth)))
	if got := readSysctl(t, e.node, "net/ipv6/conf/vlan.eth.7/accept_ra"); got != "0" {
		t.Errorf("VLAN link accept_ra = %s, want 0", got)
	}
	// Both directions go through the branch ENI.
	if err := podnettest.Connect(podNS.Path(), e.vpc.Path(), net.ParseIP(branchGW)); err != nil {
		t.Errorf("pod to VPC: %v", err)
	}
	if err := podnettest.Connect(e.vpc.Path(), podNS.Path(), net.ParseIP(branchPodIP)); err != nil {
		t.Errorf("VPC to pod: %v", err)
	}

	e.node.do(t, func() error { return undoBranch(ctx, b.Pod, branchVLAN) })
	wantState(t, "node after teardown", e.node.ns, []string{"link eth1 veth up mtu 1500", "rule 20 lookup local"})
	e.node.do(t, func() error { return undoBranch(ctx, b.Pod, branchVLAN) })
}

func TestPrivilegedBranchStandard(t *testing.T) {
	ctx := context.Background()
	e := newBranchEnv(t)
	podNS := testutil.NewNS(t)
	b := e.branch(podNS, false)
	veth := b.Pod.Interfaces[0].HostVeth
	e.node.do(t, func() error { return SetupBranch(ctx, b, podnettest.MacvlanVLAN{}) })
	wantState(t, "node", e.node.ns, wiredBranch(veth, false))
	if err := podnettest.Connect(podNS.Path(), e.vpc.Path(), net.ParseIP(branchGW)); err != nil {
		t.Errorf("pod to VPC: %v", err)
	}
	if err := podnettest.Connect(e.vpc.Path(), podNS.Path(), net.ParseIP(branchPodIP)); err != nil {
		t.Errorf("VPC to pod: %v", err)
	}
	// Node-local traffic bypasses the branch ENI in standard mode.
	if err := podnettest.Connect(e.node.ns.Path(), podNS.Path(), net.ParseIP(branchPodIP)); err != nil {
		t.Errorf("node to pod: %v", err)
	}
	e.node.do(t, func() error { return undoBranch(ctx, b.Pod, branchVLAN) })
	wantState(t, "node after teardown", e.node.ns, []string{"link eth1 veth up mtu 1500"})
}

func TestPrivilegedBranchModeMigration(t *testing.T) {
	// A pod wired in strict mode is torn down after the node switched to
	// standard mode: TeardownBranch removes both modes' state.
	ctx := context.Background()
	e := newBranchEnv(t)
	podNS := testutil.NewNS(t)
	strict := e.branch(podNS, true)
	e.node.do(t, func() error { return SetupBranch(ctx, strict, podnettest.MacvlanVLAN{}) })
	standard := e.branch(podNS, false)
	// The pair is left to the kernel (it goes with the pod's netns); Undo
	// of the standard-mode pod would not touch it, its host name differs.
	e.node.do(t, func() error { _, err := TeardownBranch(ctx, standard.Pod, branchVLAN); return err })
	wantState(t, "node after teardown", e.node.ns, []string{
		"link eth1 veth up mtu 1500",
		"link " + strict.Pod.Interfaces[0].HostVeth + " veth up mtu 9001",
	})
	var skipped []string
	err := e.node.run(func() error {
		var err error
		skipped, err = UndoBranch(ctx, standard.Pod, branchVLAN)
		return err
	})
	if err != nil || len(skipped) != 1 || !strings.Contains(skipped[0], "host veth "+standard.Pod.Interfaces[0].HostVeth+", its expected peer, does not exist") {
		t.Errorf("UndoBranch of the other mode's name = %q, %v; want eth0 left alone", skipped, err)
	}
}

func TestPrivilegedBranchRejectsBadInput(t *testing.T) {
	e := newBranchEnv(t)
	podNS := testutil.NewNS(t)
	for _, c := range []struct {
		name   string
		mutate func(*Branch)
		want   string
	}{
		{"vlan 0", func(b *Branch) { b.VLANID = 0 }, "VLAN id 0"},
		{"no MAC", func(b *Branch) { b.ENIMAC = nil }, "MAC"},
		{"no trunk", func(b *Branch) { b.ParentIfIndex = 0 }, "trunk ENI ifindex"},
		{"family mismatch", func(b *Branch) { b.SubnetGW = net.ParseIP("fe80:ec2::1") }, "different families"},
	} {
		b := e.branch(podNS, true)
		c.mutate(&b)
		err := e.node.run(func() error { return SetupBranch(context.Background(), b, podnettest.MacvlanVLAN{}) })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: SetupBranch = %v, want error containing %q", c.name, err, c.want)
		}
	}
	wantState(t, "node", e.node.ns, []string{"link eth1 veth up mtu 1500"})
}

// TestPrivilegedBranchRealVLAN runs the production VLAN path where the
// kernel supports 802.1Q.
func TestPrivilegedBranchRealVLAN(t *testing.T) {
	e := newBranchEnv(t)
	probe := e.vlanSupport()
	if probe != nil {
		t.Skipf("kernel lacks 802.1Q VLAN support: %v", probe)
	}
	ctx := context.Background()
	podNS := testutil.NewNS(t)
	b := e.branch(podNS, true)
	e.node.do(t, func() error { return SetupBranch(ctx, b, nil) })
	if !strings.Contains(strings.Join(snapshot(t, e.node.ns), "\n"), "link vlan.eth.7 vlan up") {
		t.Errorf("no 802.1Q link vlan.eth.7 on the node")
	}
	e.node.do(t, func() error { return undoBranch(ctx, b.Pod, branchVLAN) })
	wantState(t, "node after teardown", e.node.ns, []string{"link eth1 veth up mtu 1500"})
}

// TestPrivilegedBranchStrictIPv6: an IPv6 branch-ENI pod reaches the VPC
// through the branch link, whose gateway is EC2's link-local router
// fe80:ec2::1. The node carries ipamd's prerequisites for strict mode:
// local rule at 20 and ICMPv6 from the router looked up in local at 0, so
// neighbour discovery on the branch link still reaches the node.
func TestPrivilegedBranchStrictIPv6(t *testing.T) {
	ctx := context.Background()
	e := newBranchEnv(t)
	moveLocalRule(t, e.node)
	router := net.ParseIP("fe80:ec2::1")
	podIP := net.ParseIP("2001:db8:2::55")
	e.node.do(t, func() error {
		for _, fam := range []int{unix.AF_INET6} {
			r := netlink.NewRule()
			r.Family = fam
			r.Table = unix.RT_TABLE_LOCAL
			r.Priority = hostcontract.PriorityLocal
			if err := netlink.RuleAdd(r); err != nil {
				return err
			}
			r.Priority = 0
			if err := netlink.RuleDel(r); err != nil {
				return err
			}
		}
		r := netlink.NewRule()
		r.Family = unix.AF_INET6
		r.Src = hostPrefix(router)
		r.IPProto = unix.IPPROTO_ICMPV6
		r.Table = unix.RT_TABLE_LOCAL
		r.Priority = 0
		return netlink.RuleAdd(r)
	})
	err := e.vpc.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("vpc0")
		if err != nil {
			return err
		}
		for _, a := range []*net.IPNet{{IP: router, Mask: net.CIDRMask(64, 128)}, {IP: net.ParseIP("2001:db8:2::1"), Mask: net.CIDRMask(64, 128)}} {
			if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: a, Flags: unix.IFA_F_NODAD}); err != nil {
				return err
			}
		}
		return netlink.NeighSet(&netlink.Neigh{
			LinkIndex: l.Attrs().Index, Family: unix.AF_INET6, State: netlink.NUD_PERMANENT,
			IP: podIP, HardwareAddr: e.eniMAC,
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	podNS := testutil.NewNS(t)
	b := e.branch(podNS, true)
	b.Pod.Interfaces[0].Address = hostPrefix(podIP)
	b.SubnetGW = router
	veth := b.Pod.Interfaces[0].HostVeth
	e.node.do(t, func() error { return SetupBranch(ctx, b, podnettest.MacvlanVLAN{}) })
	wantState(t, "node", e.node.ns, []string{
		"link eth1 veth up mtu 1500",
		"link vlan.eth.7 macvlan up mtu 1500",
		"link " + veth + " veth up mtu 9001",
		"route 107 fe80:ec2::1/128 dev vlan.eth.7",
		"route 107 ::/0 via fe80:ec2::1 dev vlan.eth.7",
		"route 107 2001:db8:2::55/128 dev " + veth,
		"rule 0 v6 from fe80:ec2::1/128 lookup local",
		"rule 10 v6 iif vlan.eth.7 lookup 107",
		"rule 10 v6 iif " + veth + " lookup 107",
		"rule 20 lookup local",
		"rule 20 v6 lookup local",
	})
	// The kernel's part finishes on its own timers: DAD on every link the
	// path crosses, then the router's neighbour entry on the branch link.
	for nsPath, links := range map[string][]string{
		e.node.ns.Path(): {"eth1", "vlan.eth.7", veth},
		e.vpc.Path():     {"vpc0"},
		podNS.Path():     {"eth0"},
	} {
		if err := podnettest.WaitIPv6Ready(ctx, nsPath, links...); err != nil {
			t.Fatal(err)
		}
	}
	if err := podnettest.WaitNeighbour(ctx, e.node.ns.Path(), "vlan.eth.7", router); err != nil {
		t.Fatalf("router on the branch link: %v", err)
	}
	if err := podnettest.Connect(podNS.Path(), e.vpc.Path(), net.ParseIP("2001:db8:2::1")); err != nil {
		t.Errorf("pod to VPC: %v", err)
	}
	e.node.do(t, func() error { return CheckBranch(ctx, b.Pod, branchVLAN, router, true) })
	e.node.do(t, func() error { return undoBranch(ctx, b.Pod, branchVLAN) })
	wantState(t, "node after teardown", e.node.ns, []string{
		"link eth1 veth up mtu 1500",
		"rule 0 v6 from fe80:ec2::1/128 lookup local",
		"rule 20 lookup local",
		"rule 20 v6 lookup local",
	})
}

// eachMode runs f as a subtest for each POD_SECURITY_GROUP_ENFORCING_MODE:
// strict, then standard.
func eachMode(t *testing.T, f func(t *testing.T, strict bool)) {
	t.Helper()
	for _, strict := range []bool{true, false} {
		t.Run(map[bool]string{true: "strict", false: "standard"}[strict], func(t *testing.T) { f(t, strict) })
	}
}

// wiredBranch is the node's state with one branch pod wired: VLAN 7, table
// 107, branchPodIP behind the host veth, in strict mode (the local rule
// moved to 20) or standard mode.
func wiredBranch(veth string, strict bool) []string {
	return wiredBranchOn(branchVLAN, branchPodIP, veth, strict)
}

// bareBranchNode is the node's state with no branch pod wired: the trunk
// and, in strict mode, the local rule moved to 20.
func bareBranchNode(strict bool) []string {
	if strict {
		return []string{"link eth1 veth up mtu 1500", "rule 20 lookup local"}
	}
	return []string{"link eth1 veth up mtu 1500"}
}

// wiredBranchOn is wiredBranch for a pod with address addr on VLAN vlan.
func wiredBranchOn(vlan int, addr, veth string, strict bool) []string {
	link, table := VLANLinkName(vlan), strconv.Itoa(BranchTable(vlan))
	want := append(bareBranchNode(strict),
		"link "+link+" macvlan up mtu 1500",
		"link "+veth+" veth up mtu 9001",
		"route "+table+" "+branchGW+"/32 dev "+link+" scope link",
		"route "+table+" 0.0.0.0/0 via "+branchGW+" dev "+link,
	)
	if strict {
		return append(want,
			"route "+table+" "+addr+"/32 dev "+veth+" scope link",
			"rule 10 iif "+link+" lookup "+table,
			"rule 10 iif "+veth+" lookup "+table)
	}
	return append(want,
		"route main "+addr+"/32 dev "+veth+" scope link",
		"rule 512 to "+addr+"/32 lookup main",
		"rule 1536 from "+addr+"/32 lookup "+table)
}
