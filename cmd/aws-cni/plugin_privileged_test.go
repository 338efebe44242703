package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

var specVersions = []string{"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}

// supportsCheck reports whether the spec version has CHECK (0.4.0 on).
func supportsCheck(v string) bool { return v != "0.3.0" && v != "0.3.1" }

// TestPrivilegedLifecycle runs the plugin binary as a runtime does, for
// every spec version: two pods are added (one on the primary ENI, one on a
// secondary ENI with table 3), the kernel state is compared with the exact
// expected state, traffic flows, CHECK passes and then names a deleted
// route, and DEL leaves nothing behind — also when repeated and when ipamd
// is down.
func TestPrivilegedLifecycle(t *testing.T) {
	testutil.Privileged(t)
	for _, v := range specVersions {
		t.Run(v, func(t *testing.T) { testLifecycle(t, v) })
	}
}

func testLifecycle(t *testing.T, v string) {
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t,
		allocation{ip: "10.0.0.5", deviceNumber: 0, routeTable: 254},
		allocation{ip: "10.1.0.6", deviceNumber: 2, routeTable: 3})
	nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
	logFile := filepath.Join(t.TempDir(), "plugin.log")
	conf := netconf(v, nil, map[string]any{"pluginLogFile": logFile})
	podA := call{command: "ADD", containerID: "ctr-a", netns: nsA.Path(), ifName: "eth0", podName: "a", podNS: "default", conf: conf, ipamd: ipamd.socket}
	podB := podA
	podB.containerID, podB.netns, podB.podName = "ctr-b", nsB.Path(), "b"
	vethA := vethname.HostVethName("eni", "default", "a", 0)
	vethB := vethname.HostVethName("eni", "default", "b", 0)

	outA := n.run(t, podA)
	outA.mustSucceed(t, "ADD a")
	outB := n.run(t, podB)
	outB.mustSucceed(t, "ADD b")

	res := outA.result(t, v)
	if len(res.IPs) != 1 || res.IPs[0].Address.String() != "10.0.0.5/32" {
		t.Errorf("ADD a result IPs = %v, want 10.0.0.5/32", res.IPs)
	}
	names := []string{}
	for _, i := range res.Interfaces {
		names = append(names, i.Name+"|"+i.Mac+"|"+i.Sandbox)
	}
	wantIfs := []string{vethA + "||", "eth0|254|" + nsA.Path(), vethname.DummyName("default", "a") + "|0|0"}
	if !slices.Equal(names, wantIfs) {
		t.Errorf("ADD a result interfaces = %q, want %q", names, wantIfs)
	}

	wantState(t, "node", n.ns.Path(), []string{
		"link " + vethA + " veth up mtu 9001",
		"link " + vethB + " veth up mtu 9001",
		"route main 10.0.0.5/32 dev " + vethA + " scope link",
		"route main 10.1.0.6/32 dev " + vethB + " scope link",
		"rule 512 to 10.0.0.5/32 lookup main",
		"rule 512 to 10.1.0.6/32 lookup main",
		"rule 1536 from 10.1.0.6/32 lookup 3",
	})
	wantState(t, "pod a", nsA.Path(), []string{
		"link eth0 veth up mtu 9001",
		"addr eth0 10.0.0.5/32",
		"neigh eth0 169.254.1.1 lladdr " + linkMAC(t, n, vethA) + " permanent",
		"route main 169.254.1.1/32 dev eth0 scope link",
		"route main 0.0.0.0/0 via 169.254.1.1 dev eth0",
	})
	for _, c := range []struct {
		name     string
		from, to string
		ip       net.IP
	}{
		{"pod a to pod b", nsA.Path(), nsB.Path(), net.ParseIP("10.1.0.6")},
		{"pod b to pod a", nsB.Path(), nsA.Path(), net.ParseIP("10.0.0.5")},
		{"pod a to node", nsA.Path(), n.ns.Path(), n.ip},
		{"node to pod b", n.ns.Path(), nsB.Path(), net.ParseIP("10.1.0.6")},
	} {
		if err := podnettest.Connect(c.from, c.to, c.ip); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}

	check := podA
	check.command, check.conf = "CHECK", netconf(v, outA.stdout, nil)
	if supportsCheck(v) {
		n.run(t, check).mustSucceed(t, "CHECK a")
		err := nsA.Do(func(ns.NetNS) error {
			return netlink.RouteDel(&netlink.Route{Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gw: net.ParseIP("169.254.1.1")})
		})
		if err != nil {
			t.Fatal(err)
		}
		n.run(t, check).wantCode(t, "CHECK a after deleting its default route", ErrCheckFailed,
			"route 0.0.0.0/0 via 169.254.1.1 dev eth0 missing in pod netns")
	} else {
		n.run(t, check).wantCode(t, "CHECK on "+v, types.ErrIncompatibleCNIVersion, "")
	}

	// DEL a with ipamd up, twice.
	del := podA
	del.command, del.conf = "DEL", netconf(v, outA.stdout, nil)
	n.run(t, del).mustSucceed(t, "DEL a")
	if ipamd.holds("ctr-a") {
		t.Error("ipamd still holds pod a's address after DEL")
	}
	n.run(t, del).mustSucceed(t, "second DEL a")

	// DEL b with ipamd down: the wiring goes using prevResult.
	ipamd.stop()
	delB := podB
	delB.command, delB.conf = "DEL", netconf(v, outB.stdout, nil)
	n.run(t, delB).mustSucceed(t, "DEL b with ipamd down")

	// DEL removes the node's routes and rules and leaves the pairs to the
	// kernel, which removes them with the namespaces.
	wantState(t, "node after DEL", n.ns.Path(), []string{"link " + vethA + " veth up mtu 9001", "link " + vethB + " veth up mtu 9001"})
	if err := podnettest.Probe(n.ns.Path(), nsA.Path(), net.ParseIP("10.0.0.5")); err == nil {
		t.Error("node still reaches pod a after DEL")
	}
	n.sandboxGone(t, nsA, vethA)
	n.sandboxGone(t, nsB, vethB)
	wantState(t, "node after the sandboxes went", n.ns.Path(), nil)

	logged, err := os.ReadFile(logFile)
	if err != nil || !strings.Contains(string(logged), `"msg":"pod added"`) {
		t.Errorf("plugin log %s: %q, %v", logFile, logged, err)
	}
}

// TestPrivilegedDelWithNetNSGone: the runtime removed the pod's netns
// before DEL (and may pass an empty CNI_NETNS), with or without prevResult;
// DEL still releases the address and removes the node-side routes and
// rules, from ipamd's answer when there is no prevResult.
func TestPrivilegedDelWithNetNSGone(t *testing.T) {
	testutil.Privileged(t)
	for _, c := range []struct{ passPath, withPrev bool }{{true, true}, {false, true}, {true, false}, {false, false}} {
		passPath := c.passPath
		n := newNode(t, "192.168.0.10")
		ipamd := startFakeIpamd(t, allocation{ip: "10.1.0.7", deviceNumber: 1, routeTable: 2})
		podNS := testutil.NewNS(t)
		add := call{command: "ADD", containerID: "ctr-gone", netns: podNS.Path(), ifName: "eth0", podName: "gone", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
		out := n.run(t, add)
		out.mustSucceed(t, "ADD")
		removeNetNS(t, podNS)

		del := add
		del.command, del.conf = "DEL", netconf("1.0.0", out.stdout, nil)
		if !c.withPrev {
			del.conf = netconf("1.0.0", nil, nil)
		}
		if !passPath {
			del.netns = ""
		}
		n.run(t, del).mustSucceed(t, "DEL with the netns gone")
		if ipamd.holds("ctr-gone") {
			t.Error("ipamd still holds the address")
		}
		// The kernel destroys a released netns, and the host veth with it,
		// asynchronously: the veth may linger for a moment, its route and
		// the rules must not.
		veth := vethname.HostVethName("eni", "default", "gone", 0)
		got := slices.DeleteFunc(snapshot(t, n.ns.Path()), func(l string) bool { return strings.HasPrefix(l, "link "+veth+" ") })
		if d := podnettest.Diff(nil, got); d != "" {
			t.Errorf("node after DEL state differs (-want +got):\n%s", d)
		}
		n.run(t, del).mustSucceed(t, "second DEL with the netns gone")
	}
}

// TestPrivilegedLateDelKeepsNewerPod: a DEL repeated after the pod's
// address went to a newer pod (ipamd no longer knows the old one) leaves
// the newer pod's route and rules alone, though the old prevResult names
// the same address.
func TestPrivilegedLateDelKeepsNewerPod(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	same := allocation{ip: "10.1.0.8", deviceNumber: 1, routeTable: 2}
	ipamd := startFakeIpamd(t, same, same)
	nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
	addA := call{command: "ADD", containerID: "ctr-old", netns: nsA.Path(), ifName: "eth0", podName: "old", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	outA := n.run(t, addA)
	outA.mustSucceed(t, "ADD old")
	delA := addA
	delA.command, delA.conf = "DEL", netconf("1.0.0", outA.stdout, nil)
	n.run(t, delA).mustSucceed(t, "DEL old")
	n.sandboxGone(t, nsA, vethname.HostVethName("eni", "default", "old", 0))

	addB := addA
	addB.containerID, addB.netns, addB.podName = "ctr-new", nsB.Path(), "new"
	n.run(t, addB).mustSucceed(t, "ADD new")
	before := snapshot(t, n.ns.Path())
	if !slices.Contains(before, "rule 512 to 10.1.0.8/32 lookup main") {
		t.Fatalf("the newer pod has no to-pod rule: %q", before)
	}
	n.run(t, delA).mustSucceed(t, "late DEL old")
	if d := podnettest.Diff(before, snapshot(t, n.ns.Path())); d != "" {
		t.Errorf("the late DEL changed the node (-before +after):\n%s", d)
	}
	if !ipamd.holds("ctr-new") {
		t.Error("ipamd no longer holds the newer pod's address")
	}
}

// TestPrivilegedAddFailureReleasesAddress: when wiring fails after ipamd
// assigned the address, the plugin removes what it wired and ipamd sees the
// address released with reason SetupNSFailed.
func TestPrivilegedAddFailureReleasesAddress(t *testing.T) {
	testutil.Privileged(t)
	t.Run("veth creation fails", func(t *testing.T) {
		n := newNode(t, "192.168.0.10")
		ipamd := startFakeIpamd(t, allocation{ip: "10.0.0.8", routeTable: 254})
		podNS := testutil.NewNS(t)
		// The pod netns already has an eth0, so creating the veth fails.
		err := podNS.Do(func(ns.NetNS) error {
			return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "squat0"})
		})
		if err != nil {
			t.Fatal(err)
		}
		add := call{command: "ADD", containerID: "ctr-fail", netns: podNS.Path(), ifName: "eth0", podName: "fail", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
		n.run(t, add).wantCode(t, "ADD into a netns that has eth0", ErrWiring, "file exists")
		if got := ipamd.releases("ctr-fail"); !slices.Equal(got, []string{"SetupNSFailed"}) {
			t.Errorf("ipamd saw releases %q, want [SetupNSFailed]", got)
		}
		if ipamd.holds("ctr-fail") {
			t.Error("the address leaked: ipamd still holds it")
		}
		wantState(t, "node", n.ns.Path(), nil)
	})
	t.Run("network policy agent fails after wiring", func(t *testing.T) {
		n := newNode(t, "192.168.0.10")
		ipamd := startFakeIpamd(t, allocation{ip: "10.0.0.9", routeTable: 254})
		ipamd.npMode = "standard"
		podNS := testutil.NewNS(t)
		add := call{command: "ADD", containerID: "ctr-np", netns: podNS.Path(), ifName: "eth0", podName: "np", podNS: "default",
			conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket, npa: filepath.Join(t.TempDir(), "absent.sock")}
		n.run(t, add).wantCode(t, "ADD without a network policy agent", ErrNetworkPolicy, "network policy agent")
		if got := ipamd.releases("ctr-np"); !slices.Equal(got, []string{"SetupNSFailed"}) {
			t.Errorf("ipamd saw releases %q, want [SetupNSFailed]", got)
		}
		// Fully wired before the failure, fully unwired after it.
		wantState(t, "node", n.ns.Path(), nil)
		wantState(t, "pod", podNS.Path(), nil)
	})
}

// TestPrivilegedNetworkPolicyAgent: with a policy mode, ADD asks the agent
// to enforce before returning and DEL tells it the pod is gone.
func TestPrivilegedNetworkPolicyAgent(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t, allocation{ip: "10.0.0.10", routeTable: 254})
	ipamd.npMode = "strict"
	npa := startFakeNPA(t)
	podNS := testutil.NewNS(t)
	add := call{command: "ADD", containerID: "ctr-pol", netns: podNS.Path(), ifName: "eth0", podName: "pol", podNS: "prod", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket, npa: npa.socket}
	out := n.run(t, add)
	out.mustSucceed(t, "ADD")
	del := add
	del.command, del.conf = "DEL", netconf("1.0.0", out.stdout, nil)
	n.run(t, del).mustSucceed(t, "DEL")
	npa.mu.Lock()
	defer npa.mu.Unlock()
	if len(npa.enforced) != 1 || npa.enforced[0].GetK8SPodName() != "pol" || npa.enforced[0].GetNetworkPolicyMode() != "strict" || npa.enforced[0].GetInterfaceCount() != 1 {
		t.Errorf("agent enforce requests = %v", npa.enforced)
	}
	if len(npa.deleted) != 1 || npa.deleted[0].GetK8SPodNamespace() != "prod" {
		t.Errorf("agent delete requests = %v", npa.deleted)
	}
}

// TestPrivilegedIpamdFailures: the three ways ipamd can fail an ADD give
// three distinct codes, and nothing is wired.
func TestPrivilegedIpamdFailures(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	podNS := testutil.NewNS(t)
	add := call{command: "ADD", containerID: "ctr-x", netns: podNS.Path(), ifName: "eth0", podName: "x", podNS: "default", conf: netconf("1.0.0", nil, nil)}

	add.ipamd = filepath.Join(t.TempDir(), "no-ipamd.sock")
	n.run(t, add).wantCode(t, "ADD without ipamd", ErrIpamdUnreachable, "ipamd unreachable at "+add.ipamd)

	ipamd := startFakeIpamd(t)
	add.ipamd = ipamd.socket
	ipamd.refuse = true
	n.run(t, add).wantCode(t, "ADD refused", ErrNoAddress, "failed to assign an IP address")
	// ipamd's cause travels in the reply's trailer into the CNI error.
	ipamd.cause = "pod asks for a multi-NIC attachment but ENABLE_MULTI_NIC=false on this node"
	n.run(t, add).wantCode(t, "ADD refused with a cause", ErrNoAddress, "failed to assign an IP address: "+ipamd.cause)
	ipamd.cause = strings.Repeat("x", 4*maxCauseLen)
	if o := n.run(t, add); o.err == nil || len(o.err.Msg) > maxCauseLen+100 {
		t.Errorf("ADD refused with a huge cause: %v, want the cause cut to %d bytes", o.err, maxCauseLen)
	}
	ipamd.refuse = false

	ipamd.addErr = statusError("ResourceExhausted", "pool empty: subnet subnet-1 has no free addresses")
	n.run(t, add).wantCode(t, "ADD with an exhausted pool", ErrNoAddress, "subnet subnet-1 has no free addresses")

	ipamd.addErr = statusError("FailedPrecondition", "wrong client version")
	n.run(t, add).wantCode(t, "ADD rejected", ErrIpamd, "wrong client version")

	wantState(t, "node", n.ns.Path(), nil)
	wantState(t, "pod", podNS.Path(), nil)
}

// TestPrivilegedConfigErrors: bad netconf is reported with the spec's codes.
func TestPrivilegedConfigErrors(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	podNS := testutil.NewNS(t)
	add := call{command: "ADD", containerID: "ctr-c", netns: podNS.Path(), ifName: "eth0", podName: "c", podNS: "default",
		conf: netconf("1.0.0", nil, map[string]any{"vethPrefix": "toolong"}), ipamd: "/nonexistent.sock"}
	n.run(t, add).wantCode(t, "ADD with a 7-character vethPrefix", types.ErrInvalidNetworkConfig, `vethPrefix: veth prefix "toolong": 7 characters, at most 4`)
	add.conf = netconf("1.0.0", nil, map[string]any{"mtu": 1500})
	n.run(t, add).wantCode(t, "ADD with a numeric mtu", types.ErrDecodingFailure, "mtu")
}

// TestPrivilegedStatusAndGC: STATUS follows ipamd's health; GC succeeds.
func TestPrivilegedStatusAndGC(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t)
	status := call{command: "STATUS", conf: netconf("1.1.0", nil, nil), ipamd: ipamd.socket}
	n.run(t, status).mustSucceed(t, "STATUS with ipamd serving")
	ipamd.healthSv.SetServingStatus("", healthNotServing)
	n.run(t, status).wantCode(t, "STATUS with ipamd not serving", types.ErrPluginNotAvailable, "NOT_SERVING")
	ipamd.stop()
	n.run(t, status).wantCode(t, "STATUS with ipamd down", types.ErrPluginNotAvailable, "ipamd is not serving")
	n.run(t, call{command: "GC", conf: netconf("1.1.0", nil, nil)}).mustSucceed(t, "GC")
	n.run(t, call{command: "STATUS", conf: netconf("1.0.0", nil, nil)}).wantCode(t, "STATUS on 1.0.0", types.ErrIncompatibleCNIVersion, "")
}

// TestPrivilegedBranchPod: a branch-ENI pod's CHECK and DEL work from
// prevResult alone (ipamd is never asked), on the real kernel with a
// macvlan standing in for the VLAN link. ADD of a branch pod needs a real
// 802.1Q link and runs only where the kernel has it.
func TestPrivilegedBranchPod(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t)
	podNS := testutil.NewNS(t)
	var trunk int
	err := n.ns.Do(func(ns.NetNS) error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth1"}, PeerName: "eth1peer"}); err != nil {
			return err
		}
		l, err := netlink.LinkByName("eth1")
		if err != nil {
			return err
		}
		trunk = l.Attrs().Index
		return netlink.LinkSetUp(l)
	})
	if err != nil {
		t.Fatal(err)
	}
	mac, _ := net.ParseMAC("02:42:0a:02:00:37")
	b := podnet.Branch{
		Pod: podnet.Pod{NetNS: podNS.Path(), MTU: 9001, Interfaces: []podnet.Interface{{
			HostVeth: vethname.HostVethName("vlan", "default", "sg", 0), ContainerIf: "eth0",
			Address: singleHost(net.ParseIP("10.2.0.55")),
		}}},
		VLANID: 7, ENIMAC: mac, SubnetGW: net.ParseIP("10.2.0.1").To4(), ParentIfIndex: trunk, Strict: true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = n.ns.Do(func(ns.NetNS) error { return podnet.SetupBranch(ctx, b, podnettest.MacvlanVLAN{}) })
	if err != nil {
		t.Fatal(err)
	}
	prev := buildResult(podNS.Path(), b.Pod.Interfaces, b.SubnetGW, vethname.DummyName("default", "sg"), 7, -1)
	prev.CNIVersion = "1.0.0"
	raw, err := prev.GetAsVersion("1.0.0")
	if err != nil {
		t.Fatal(err)
	}
	prevJSON := mustJSON(t, raw)

	c := call{command: "CHECK", containerID: "ctr-sg", netns: podNS.Path(), ifName: "eth0", podName: "sg", podNS: "default", conf: netconf("1.0.0", prevJSON, nil), ipamd: ipamd.socket}
	n.run(t, c).mustSucceed(t, "CHECK branch pod")
	err = n.ns.Do(func(ns.NetNS) error {
		r := netlink.NewRule()
		r.IifName, r.Table, r.Priority = "vlan.eth.7", 107, 10
		return netlink.RuleDel(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	n.run(t, c).wantCode(t, "CHECK without the VLAN iif rule", ErrCheckFailed, "rule priority 10 iif vlan.eth.7 lookup 107 missing in host netns")

	c.command = "DEL"
	n.run(t, c).mustSucceed(t, "DEL branch pod")
	if got := ipamd.releases("ctr-sg"); len(got) != 0 {
		t.Errorf("DEL of a branch pod asked ipamd to release: %q", got)
	}
	veth := b.Pod.Interfaces[0].HostVeth
	wantState(t, "node after DEL", n.ns.Path(), []string{"link eth1 veth up mtu 1500", "link eth1peer veth down mtu 1500", "link " + veth + " veth up mtu 9001"})
	n.sandboxGone(t, podNS, veth)
	wantState(t, "node after the sandbox went", n.ns.Path(), []string{"link eth1 veth up mtu 1500", "link eth1peer veth down mtu 1500"})
}

// TestPrivilegedIPv6Pod: an IPv6 pod gets a /128, fe80::1 as gateway and a
// usable address as soon as ADD returns; CHECK and DEL work as for IPv4.
func TestPrivilegedIPv6Pod(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "2001:db8:ff::10")
	ipamd := startFakeIpamd(t, allocation{ip: "2001:db8::a", routeTable: 254}, allocation{ip: "2001:db8:1::b", deviceNumber: 1, routeTable: 2})
	nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
	a := call{command: "ADD", containerID: "ctr-6a", netns: nsA.Path(), ifName: "eth0", podName: "a6", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	b := a
	b.containerID, b.netns, b.podName = "ctr-6b", nsB.Path(), "b6"
	outA := n.run(t, a)
	outA.mustSucceed(t, "ADD a")
	outB := n.run(t, b)
	outB.mustSucceed(t, "ADD b")
	vethA := vethname.HostVethName("eni", "default", "a6", 0)
	wantState(t, "pod a", nsA.Path(), []string{
		"link eth0 veth up mtu 9001",
		"addr eth0 2001:db8::a/128",
		"neigh eth0 fe80::1 lladdr " + linkMAC(t, n, vethA) + " permanent",
		"route main fe80::1/128 dev eth0",
		"route main ::/0 via fe80::1 dev eth0",
	})
	if err := podnettest.Connect(nsA.Path(), nsB.Path(), net.ParseIP("2001:db8:1::b")); err != nil {
		t.Errorf("pod a to pod b: %v", err)
	}
	if err := podnettest.Connect(nsB.Path(), n.ns.Path(), n.ip); err != nil {
		t.Errorf("pod b to node: %v", err)
	}
	check := a
	check.command, check.conf = "CHECK", netconf("1.0.0", outA.stdout, nil)
	n.run(t, check).mustSucceed(t, "CHECK a")
	for _, c := range []call{a, b} {
		out := outA
		if c.containerID == b.containerID {
			out = outB
		}
		c.command, c.conf = "DEL", netconf("1.0.0", out.stdout, nil)
		n.run(t, c).mustSucceed(t, "DEL "+c.podName)
	}
	n.sandboxGone(t, nsA, vethA)
	n.sandboxGone(t, nsB, vethname.HostVethName("eni", "default", "b6", 0))
	wantState(t, "node after DEL", n.ns.Path(), nil)
}

// TestPrivilegedMultiNICPod: the pod annotation asks ipamd for one address
// per network card; the pod gets eth0 and mNicIf1 with its own table.
func TestPrivilegedMultiNICPod(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t, allocation{ip: "10.0.0.11", routeTable: 254}, allocation{ip: "10.9.0.11", routeTable: 10100})
	podNS := testutil.NewNS(t)
	annotations := map[string]any{"runtimeConfig": map[string]any{
		"io.kubernetes.cri.pod-annotations": map[string]string{"k8s.amazonaws.com/nicConfig": "multi-nic-attachment"},
	}}
	add := call{command: "ADD", containerID: "ctr-m", netns: podNS.Path(), ifName: "eth0", podName: "m", podNS: "default", conf: netconf("1.1.0", nil, annotations), ipamd: ipamd.socket}
	out := n.run(t, add)
	out.mustSucceed(t, "ADD")
	res := out.result(t, "1.1.0")
	if len(res.IPs) != 2 || len(res.Interfaces) != 5 || res.Interfaces[3].Name != "mNicIf1" || res.Interfaces[3].Mac != "10100" {
		t.Errorf("multi-NIC result = %s", out.stdout)
	}
	h0, h1 := vethname.HostVethName("eni", "default", "m", 0), vethname.HostVethName("eni", "default", "m", 1)
	wantState(t, "node", n.ns.Path(), []string{
		"link " + h0 + " veth up mtu 9001",
		"link " + h1 + " veth up mtu 9001",
		"route main 10.0.0.11/32 dev " + h0 + " scope link",
		"route main 10.9.0.11/32 dev " + h1 + " scope link",
		"rule 512 to 10.0.0.11/32 lookup main",
		"rule 512 to 10.9.0.11/32 lookup main",
		"rule 1536 from 10.9.0.11/32 lookup 10100",
	})
	check := add
	check.command, check.conf = "CHECK", netconf("1.1.0", out.stdout, nil)
	n.run(t, check).mustSucceed(t, "CHECK")
	// Without ipamd the second interface is still found in prevResult.
	ipamd.stop()
	del := check
	del.command = "DEL"
	n.run(t, del).mustSucceed(t, "DEL with ipamd down")
	n.sandboxGone(t, podNS, h0, h1)
	wantState(t, "node after DEL", n.ns.Path(), nil)
}

// TestPrivilegedBranchPodAddRealVLAN runs a branch-ENI ADD end to end; it
// needs kernel 802.1Q support.
func TestPrivilegedBranchPodAddRealVLAN(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	var trunk int
	probe := n.ns.Do(func(ns.NetNS) error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth1"}, PeerName: "eth1peer"}); err != nil {
			return err
		}
		l, err := netlink.LinkByName("eth1")
		if err != nil {
			return err
		}
		trunk = l.Attrs().Index
		return podnet.KernelVLAN{}.CreateVLAN("vlanprobe", trunk, 4000, nil)
	})
	if probe != nil {
		t.Skipf("kernel lacks 802.1Q VLAN support: %v", probe)
	}
	ipamd := startFakeIpamd(t)
	ipamd.branch = &branchReply{ip: "10.2.0.55", vlan: 7, mac: "02:42:0a:02:00:37", gw: "10.2.0.1", parent: int32(trunk)}
	podNS := testutil.NewNS(t)
	add := call{command: "ADD", containerID: "ctr-v", netns: podNS.Path(), ifName: "eth0", podName: "v", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	out := n.run(t, add)
	out.mustSucceed(t, "ADD branch pod")
	del := add
	del.command, del.conf = "DEL", netconf("1.0.0", out.stdout, nil)
	n.run(t, del).mustSucceed(t, "DEL branch pod")
}
