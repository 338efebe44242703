package main

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedLateDelOfReplacedSandbox: sandbox A of a pod is replaced
// by sandbox B of the same pod, which gets the same address and, the host
// veth being named after the pod, the same host veth name. A late or
// repeated DEL of A must leave B's route and rules alone and B must still
// carry traffic, whatever ipamd says: it still holds A's address (A's DEL
// never reached it), it no longer knows A (the DEL is repeated), or it is
// down and DEL works from A's prevResult. When A's veth outlived A's
// namespace, B's ADD replaces it and B's own DEL still removes everything.
func TestPrivilegedLateDelOfReplacedSandbox(t *testing.T) {
	testutil.Privileged(t)
	for _, c := range []struct {
		name string
		// delAFirst: A was deleted once before B came (ipamd forgets A).
		delAFirst bool
		// ipamdDown: ipamd is unreachable at the late DEL.
		ipamdDown bool
		// keepNSA: A's namespace (and so its veth) is still there when B
		// is added.
		keepNSA bool
	}{
		{name: "ipamd answers A's address"},
		{name: "ipamd does not know A", delAFirst: true},
		{name: "ipamd down", ipamdDown: true},
		{name: "A's veth left over", keepNSA: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			const addr = "10.1.0.11"
			n := newNode(t, "192.168.0.10")
			same := allocation{ip: addr, deviceNumber: 1, routeTable: 2}
			ipamd := startFakeIpamd(t, same, same)
			nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
			veth := vethname.HostVethName("eni", "default", "web", 0)

			addA := call{command: "ADD", containerID: "sandbox-a", netns: nsA.Path(), ifName: "eth0", podName: "web", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
			outA := n.run(t, addA)
			outA.mustSucceed(t, "ADD A")
			delA := addA
			delA.command, delA.conf = "DEL", netconf("1.0.0", outA.stdout, nil)
			if c.delAFirst {
				n.run(t, delA).mustSucceed(t, "DEL A")
			}
			if !c.keepNSA {
				n.sandboxGone(t, nsA, veth)
			}

			addB := addA
			addB.containerID, addB.netns = "sandbox-b", nsB.Path()
			outB := n.run(t, addB)
			outB.mustSucceed(t, "ADD B")
			if got, want := linkAlias(t, n, veth), "aws-cni:sandbox-b"; got != want {
				t.Errorf("host veth %s alias %q after ADD B, want %q", veth, got, want)
			}
			before := snapshot(t, n.ns.Path())
			for _, r := range []string{"rule 512 to " + addr + "/32 lookup main", "rule 1536 from " + addr + "/32 lookup 2", "route main " + addr + "/32 dev " + veth + " scope link"} {
				if !slices.Contains(before, r) {
					t.Fatalf("pod B lacks %q: %q", r, before)
				}
			}

			if c.ipamdDown {
				ipamd.stop()
			}
			n.lateDelLeaves(t, delA, before)
			if err := podnettest.Connect(n.ns.Path(), nsB.Path(), net.ParseIP(addr)); err != nil {
				t.Errorf("pod B after the late DEL of A: %v", err)
			}
			if c.ipamdDown {
				return
			}
			if ipamd.holds("sandbox-a") {
				t.Error("ipamd still holds A's address")
			}

			delB := addB
			delB.command, delB.conf = "DEL", netconf("1.0.0", outB.stdout, nil)
			n.run(t, delB).mustSucceed(t, "DEL B")
			after := slices.DeleteFunc(snapshot(t, n.ns.Path()), func(l string) bool { return strings.HasPrefix(l, "link ") })
			if d := podnettest.Diff(nil, after); d != "" {
				t.Errorf("DEL B left (-want +got):\n%s", d)
			}
		})
	}
}

// replaceSandbox runs the ADD of sandbox A (addA), removes A's namespace as
// a runtime does when it replaces a pod's sandbox (waiting for the kernel to
// take hostVeths with it), then the ADD of sandbox B of the same pod in nsB.
func (n node) replaceSandbox(t *testing.T, addA call, nsA, nsB ns.NetNS, hostVeths ...string) (outA, outB outcome, addB call) {
	t.Helper()
	outA = n.run(t, addA)
	outA.mustSucceed(t, "ADD A")
	n.sandboxGone(t, nsA, hostVeths...)
	addB = addA
	addB.containerID, addB.netns = "sandbox-b", nsB.Path()
	outB = n.run(t, addB)
	outB.mustSucceed(t, "ADD B")
	return outA, outB, addB
}

// lateDelLeaves runs the late DEL of a replaced sandbox, which must
// succeed and leave the node as it was before (the newer sandbox's state).
func (n node) lateDelLeaves(t *testing.T, del call, before []string) {
	t.Helper()
	n.run(t, del).mustSucceed(t, "late DEL A")
	if d := podnettest.Diff(before, snapshot(t, n.ns.Path())); d != "" {
		t.Errorf("the late DEL of A changed the node (-before +after):\n%s", d)
	}
}

// linkAlias is the alias (IFLA_IFALIAS) of the node's link name.
func linkAlias(t *testing.T, n node, name string) string {
	t.Helper()
	return nodeLink(t, n, name).Alias
}

// nodeLink is the attributes of the node's link name.
func nodeLink(t *testing.T, n node, name string) netlink.LinkAttrs {
	t.Helper()
	var attrs netlink.LinkAttrs
	err := n.ns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		attrs = *l.Attrs()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return attrs
}

// TestPrivilegedLateBranchDelOfReplacedSandbox: the same for a branch-ENI
// pod (strict mode, over the stand-in of this kernel without 802.1Q):
// sandbox B of the pod gets the branch's VLAN, address and host veth name
// back. A late DEL of A, driven by A's prevResult (ipamd is not asked) or
// by ipamd's reply (it still holds A), leaves B's VLAN table, routes and
// rules alone and the VPC still reaches B.
func TestPrivilegedLateBranchDelOfReplacedSandbox(t *testing.T) {
	testutil.Privileged(t)
	for _, withPrev := range []bool{true, false} {
		t.Run(map[bool]string{true: "prevResult", false: "ipamd's reply"}[withPrev], func(t *testing.T) {
			const addr = "10.2.0.57"
			n := newNode(t, "192.168.0.10")
			s, ipamd := branchStandin(t, n, 9, "02:42:0a:02:00:39", addr)
			nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
			veth := vethname.HostVethName(vethname.BranchPrefix, "default", "sg", 0)

			addA := call{command: "ADD", containerID: "sandbox-a", netns: nsA.Path(), ifName: "eth0", podName: "sg", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
			outA, _, _ := n.replaceSandbox(t, addA, nsA, nsB, veth)
			before := snapshot(t, n.ns.Path())
			for _, r := range []string{"route 109 " + addr + "/32 dev " + veth + " scope link", "rule 10 iif " + veth + " lookup 109", "rule 10 iif vlan.eth.9 lookup 109"} {
				if !slices.Contains(before, r) {
					t.Fatalf("pod B lacks %q: %q", r, before)
				}
			}

			delA := addA
			delA.command = "DEL"
			if withPrev {
				delA.conf = netconf("1.0.0", outA.stdout, nil)
			}
			n.lateDelLeaves(t, delA, before)
			if err := podnettest.Connect(s.VPC.Path(), nsB.Path(), net.ParseIP(addr)); err != nil {
				t.Errorf("VPC to pod B after the late DEL of A: %v", err)
			}
		})
	}
}

// TestPrivilegedRepeatedAddOfSandbox: an ADD repeated for the same sandbox
// (a runtime retrying) replaces the sandbox's own veth and keeps working;
// the sandbox's DEL then removes everything. The container id is 250
// bytes (the harness passes it as K8S_POD_INFRA_CONTAINER_ID too, at most
// 253), too long to be the alias verbatim.
func TestPrivilegedRepeatedAddOfSandbox(t *testing.T) {
	testutil.Privileged(t)
	const addr = "10.1.0.12"
	n := newNode(t, "192.168.0.10")
	same := allocation{ip: addr, deviceNumber: 1, routeTable: 2}
	ipamd := startFakeIpamd(t, same, same)
	podNS := testutil.NewNS(t)
	veth := vethname.HostVethName("eni", "default", "again", 0)
	id := strings.Repeat("c", 250)
	add := call{command: "ADD", containerID: id, netns: podNS.Path(), ifName: "eth0", podName: "again", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	n.run(t, add).mustSucceed(t, "ADD")
	first := linkAlias(t, n, veth)
	out := n.run(t, add)
	out.mustSucceed(t, "repeated ADD")
	if got := linkAlias(t, n, veth); got != first || !strings.HasPrefix(got, "aws-cni:ccc") || len(got) > 255 {
		t.Errorf("host veth alias %q after the repeated ADD (%q after the first), want the sandbox's mark of at most 255 bytes", got, first)
	}
	if err := podnettest.Connect(n.ns.Path(), podNS.Path(), net.ParseIP(addr)); err != nil {
		t.Errorf("pod after the repeated ADD: %v", err)
	}
	del := add
	del.command, del.conf = "DEL", netconf("1.0.0", out.stdout, nil)
	n.run(t, del).mustSucceed(t, "DEL")
	wantState(t, "node after DEL", n.ns.Path(), []string{"link " + veth + " veth up mtu 9001"})
}

// TestPrivilegedDelOfUnmarkedVeth: a host veth without the plugin's mark
// (made by upstream's plugin or an older version, before the node switched
// to this one) is torn down by its pod's DEL as before: route and rules
// go, with ipamd answering and with ipamd down.
func TestPrivilegedDelOfUnmarkedVeth(t *testing.T) {
	testutil.Privileged(t)
	for _, ipamdUp := range []bool{true, false} {
		t.Run(map[bool]string{true: "ipamd up", false: "ipamd down"}[ipamdUp], func(t *testing.T) {
			n := newNode(t, "192.168.0.10")
			ipamd := startFakeIpamd(t, allocation{ip: "10.1.0.13", deviceNumber: 1, routeTable: 2})
			podNS := testutil.NewNS(t)
			veth := vethname.HostVethName("eni", "default", "old", 0)
			add := call{command: "ADD", containerID: "sandbox-old", netns: podNS.Path(), ifName: "eth0", podName: "old", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
			out := n.run(t, add)
			out.mustSucceed(t, "ADD")
			err := n.ns.Do(func(ns.NetNS) error {
				l, err := netlink.LinkByName(veth)
				if err != nil {
					return err
				}
				return netlink.LinkSetAlias(l, "")
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := linkAlias(t, n, veth); got != "" {
				t.Fatalf("host veth alias %q, want none", got)
			}
			del := add
			del.command, del.conf = "DEL", netconf("1.0.0", out.stdout, nil)
			if !ipamdUp {
				ipamd.stop()
			}
			n.run(t, del).mustSucceed(t, "DEL")
			wantState(t, "node after DEL", n.ns.Path(), []string{"link " + veth + " veth up mtu 9001"})
		})
	}
}

// TestPrivilegedBranchModeSwitch: the node switches the security-group
// enforcing mode between sandbox A of a branch-ENI pod and sandbox B, and
// A's DEL has not come when B is added (A's namespace is gone). B, wired
// in the new mode, must be reachable from the VPC despite what A left (and
// A's CHECK before it went, under the new mode's netconf, passes). B's
// host veth has the other mode's name (strict `vlan…`, standard
// `<prefix>…`): A's late DEL, driven by A's prevResult naming A's veth,
// must still find B's, marked B, and leave B's VLAN link, table, routes
// and rules alone.
func TestPrivilegedBranchModeSwitch(t *testing.T) {
	testutil.Privileged(t)
	for _, c := range []struct{ from, to string }{{"strict", "standard"}, {"standard", "strict"}} {
		t.Run(c.from+" to "+c.to, func(t *testing.T) {
			const addr = "10.2.0.58"
			n := newNode(t, "192.168.0.10")
			s, ipamd := branchStandin(t, n, 9, "02:42:0a:02:00:3a", addr)
			nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
			name := map[string]string{
				"strict":   vethname.HostVethName(vethname.BranchPrefix, "default", "sg", 0),
				"standard": vethname.HostVethName("eni", "default", "sg", 0),
			}
			mode := func(m string) map[string]any { return map[string]any{"podSGEnforcingMode": m} }

			addA := call{command: "ADD", containerID: "sandbox-a", netns: nsA.Path(), ifName: "eth0", podName: "sg", podNS: "default", conf: netconf("1.0.0", nil, mode(c.from)), ipamd: ipamd.socket}
			outA := n.run(t, addA)
			outA.mustSucceed(t, "ADD A")
			// The node has switched; A, still running, is wired as before.
			checkA := addA
			checkA.command, checkA.conf = "CHECK", netconf("1.0.0", outA.stdout, mode(c.to))
			n.run(t, checkA).mustSucceed(t, "CHECK A after the switch")
			n.sandboxGone(t, nsA, name[c.from])
			addB := addA
			addB.containerID, addB.netns, addB.conf = "sandbox-b", nsB.Path(), netconf("1.0.0", nil, mode(c.to))
			n.run(t, addB).mustSucceed(t, "ADD B")
			if err := podnettest.Connect(s.VPC.Path(), nsB.Path(), net.ParseIP(addr)); err != nil {
				t.Errorf("VPC to pod B after ADD B: %v", err)
			}
			before := snapshot(t, n.ns.Path())

			delA := addA
			delA.command, delA.conf = "DEL", netconf("1.0.0", outA.stdout, mode(c.to))
			n.lateDelLeaves(t, delA, before)
			if err := podnettest.Connect(s.VPC.Path(), nsB.Path(), net.ParseIP(addr)); err != nil {
				t.Errorf("VPC to pod B after the late DEL of A: %v", err)
			}
		})
	}
}

// TestPrivilegedLateDelKeepsPolicies: with network policies on, sandbox A
// of a pod is replaced by sandbox B, whose ADD has the agent enforce the
// pod's policies. A late DEL of A that ipamd still answers for (it held
// A's address) must not have the agent drop the pod's policies: they are
// B's. B's own DEL still has them dropped.
func TestPrivilegedLateDelKeepsPolicies(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t, allocation{ip: "10.1.0.21", deviceNumber: 1, routeTable: 2}, allocation{ip: "10.1.0.22", deviceNumber: 1, routeTable: 2})
	ipamd.npMode = "strict"
	npa := startFakeNPA(t)
	nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
	veth := vethname.HostVethName("eni", "default", "guarded", 0)

	addA := call{command: "ADD", containerID: "sandbox-a", netns: nsA.Path(), ifName: "eth0", podName: "guarded", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket, npa: npa.socket}
	outA, outB, addB := n.replaceSandbox(t, addA, nsA, nsB, veth)
	if !npa.enforcing("default", "guarded") {
		t.Fatal("the agent does not enforce the pod's policies after ADD B")
	}

	delA := addA
	delA.command, delA.conf = "DEL", netconf("1.0.0", outA.stdout, nil)
	n.run(t, delA).mustSucceed(t, "late DEL A")
	if ipamd.holds("sandbox-a") {
		t.Error("ipamd still holds A's address")
	}
	if !npa.enforcing("default", "guarded") {
		t.Error("the late DEL of A had the agent drop the policies of the pod's running sandbox B")
	}

	delB := addB
	delB.command, delB.conf = "DEL", netconf("1.0.0", outB.stdout, nil)
	n.run(t, delB).mustSucceed(t, "DEL B")
	if npa.enforcing("default", "guarded") {
		t.Error("the agent still enforces the pod's policies after DEL B")
	}
}

// TestPrivilegedLateDelOfReplacedSandboxIPv6: the late DEL of a replaced
// sandbox, for an IPv6 pod of a secondary ENI: B keeps its /128 route and
// rules and its traffic, whether ipamd answers A's address or is down.
func TestPrivilegedLateDelOfReplacedSandboxIPv6(t *testing.T) {
	testutil.Privileged(t)
	for _, ipamdDown := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipamd answers", true: "ipamd down"}[ipamdDown], func(t *testing.T) {
			const addr = "2001:db8:1::c"
			n := newNode(t, "2001:db8:ff::10")
			same := allocation{ip: addr, deviceNumber: 1, routeTable: 2}
			ipamd := startFakeIpamd(t, same, same)
			nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
			veth := vethname.HostVethName("eni", "default", "web6", 0)
			addA := call{command: "ADD", containerID: "sandbox-a", netns: nsA.Path(), ifName: "eth0", podName: "web6", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
			outA, _, _ := n.replaceSandbox(t, addA, nsA, nsB, veth)
			before := snapshot(t, n.ns.Path())
			if !slices.Contains(before, "route main "+addr+"/128 dev "+veth+" scope link") && !slices.Contains(before, "route main "+addr+"/128 dev "+veth) {
				t.Fatalf("pod B lacks its route: %q", before)
			}
			if ipamdDown {
				ipamd.stop()
			}
			delA := addA
			delA.command, delA.conf = "DEL", netconf("1.0.0", outA.stdout, nil)
			n.lateDelLeaves(t, delA, before)
			if err := podnettest.Connect(n.ns.Path(), nsB.Path(), net.ParseIP(addr)); err != nil {
				t.Errorf("pod B after the late DEL of A: %v", err)
			}
		})
	}
}

// TestPrivilegedLateDelOfReplacedMultiNICSandbox: the late DEL of a
// replaced sandbox of a multi-NIC pod, whose new sandbox got the same two
// addresses: both host veths (interfaces 0 and 1) are marked with B and
// the late DEL of A leaves both routes and all rules, ipamd answering or
// down.
func TestPrivilegedLateDelOfReplacedMultiNICSandbox(t *testing.T) {
	testutil.Privileged(t)
	for _, ipamdDown := range []bool{false, true} {
		t.Run(map[bool]string{false: "ipamd answers", true: "ipamd down"}[ipamdDown], func(t *testing.T) {
			n := newNode(t, "192.168.0.10")
			a0, a1 := allocation{ip: "10.0.0.41", routeTable: 254}, allocation{ip: "10.9.0.41", routeTable: 10100}
			ipamd := startFakeIpamd(t, a0, a1, a0, a1)
			nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
			annotations := map[string]any{"runtimeConfig": map[string]any{
				"io.kubernetes.cri.pod-annotations": map[string]string{"k8s.amazonaws.com/nicConfig": "multi-nic-attachment"},
			}}
			h0, h1 := vethname.HostVethName("eni", "default", "mm", 0), vethname.HostVethName("eni", "default", "mm", 1)
			addA := call{command: "ADD", containerID: "sandbox-a", netns: nsA.Path(), ifName: "eth0", podName: "mm", podNS: "default", conf: netconf("1.1.0", nil, annotations), ipamd: ipamd.socket}
			outA, _, _ := n.replaceSandbox(t, addA, nsA, nsB, h0, h1)
			for _, h := range []string{h0, h1} {
				if got := linkAlias(t, n, h); got != "aws-cni:sandbox-b" {
					t.Errorf("host veth %s alias %q after ADD B, want aws-cni:sandbox-b", h, got)
				}
			}
			before := snapshot(t, n.ns.Path())
			if ipamdDown {
				ipamd.stop()
			}
			delA := addA
			delA.command, delA.conf = "DEL", netconf("1.1.0", outA.stdout, nil)
			n.lateDelLeaves(t, delA, before)
		})
	}
}
