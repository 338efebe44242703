package podnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// node is a test "node": a namespace with forwarding on and an address of
// its own on lo, standing in for the node's primary IP.
type node struct {
	ns ns.NetNS
	ip net.IP
}

func newNode(t *testing.T, ip string) node {
	t.Helper()
	n := node{ns: testutil.NewNS(t), ip: net.ParseIP(ip)}
	n.do(t, func() error {
		for _, kv := range [][2]string{{"net/ipv4/ip_forward", "1"}, {"net/ipv6/conf/all/forwarding", "1"}} {
			if err := os.WriteFile("/proc/sys/"+kv[0], []byte(kv[1]), 0o644); err != nil {
				return err
			}
		}
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.AddrAdd(lo, &netlink.Addr{IPNet: hostPrefix(n.ip)})
	})
	return n
}

func (n node) do(t *testing.T, f func() error) {
	t.Helper()
	if err := n.ns.Do(func(ns.NetNS) error { return f() }); err != nil {
		t.Fatal(err)
	}
}

// vethGone deletes the node's host veth named veth, as the kernel does
// with the pair when the pod's namespace goes.
func (n node) vethGone(t *testing.T, veth string) {
	t.Helper()
	n.do(t, func() error {
		l, err := netlink.LinkByName(veth)
		if err != nil {
			return err
		}
		return netlink.LinkDel(l)
	})
}

// run calls f in the node's namespace and returns its error.
func (n node) run(f func() error) error {
	return n.ns.Do(func(ns.NetNS) error { return f() })
}

func iface(ns, pod, ip string, index, table int) Interface {
	addr := hostPrefix(net.ParseIP(ip))
	return Interface{
		Index:       index,
		HostVeth:    vethname.HostVethName("eni", ns, pod, index),
		ContainerIf: vethname.ContainerIfName("eth0", index),
		Address:     addr,
		RouteTable:  table,
	}
}

func snapshot(t *testing.T, n ns.NetNS) []string {
	t.Helper()
	got, err := podnettest.Snapshot(n.Path())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wantState(t *testing.T, what string, n ns.NetNS, want []string) {
	t.Helper()
	if d := podnettest.Diff(want, snapshot(t, n)); d != "" {
		t.Errorf("%s state differs (-want +got):\n%s", what, d)
	}
}

// wiredPodV4 is a wired IPv4 pod's state: eth0 of MTU mtu with address
// addr, and the node's end (MAC hostMAC) as 169.254.1.1, its gateway.
func wiredPodV4(mtu int, addr, hostMAC string) []string {
	return []string{
		"link eth0 veth up mtu " + strconv.Itoa(mtu),
		"addr eth0 " + addr + "/32",
		"neigh eth0 169.254.1.1 lladdr " + hostMAC + " permanent",
		"route main 169.254.1.1/32 dev eth0 scope link",
		"route main 0.0.0.0/0 via 169.254.1.1 dev eth0",
	}
}

func hostMAC(t *testing.T, n node, name string) string {
	t.Helper()
	var mac string
	n.do(t, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		mac = l.Attrs().HardwareAddr.String()
		if l.Attrs().HardwareAddr[0]&0x03 != 0x02 {
			t.Errorf("host veth %s MAC %s is not locally administered unicast", name, mac)
		}
		return nil
	})
	return mac
}

func readSysctl(t *testing.T, n node, key string) string {
	t.Helper()
	var v string
	n.do(t, func() error {
		b, err := os.ReadFile("/proc/sys/" + key)
		v = strings.TrimSpace(string(b))
		return err
	})
	return v
}

func TestPrivilegedSetupIPv4(t *testing.T) {
	ctx := context.Background()
	n := newNode(t, "192.168.0.10")
	nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
	podA := Pod{NetNS: nsA.Path(), MTU: 9001, Interfaces: []Interface{iface("default", "a", "10.0.0.5", 0, 0)}}
	// Pod B's address belongs to a secondary ENI whose table is 3.
	podB := Pod{NetNS: nsB.Path(), MTU: 1500, Interfaces: []Interface{iface("default", "b", "10.1.0.6", 0, 3)}}
	vethA, vethB := podA.Interfaces[0].HostVeth, podB.Interfaces[0].HostVeth
	n.do(t, func() error { return Setup(ctx, podA) })
	n.do(t, func() error { return Setup(ctx, podB) })

	wantState(t, "node", n.ns, []string{
		"link " + vethA + " veth up mtu 9001",
		"link " + vethB + " veth up mtu 1500",
		"route main 10.0.0.5/32 dev " + vethA + " scope link",
		"route main 10.1.0.6/32 dev " + vethB + " scope link",
		"rule 512 to 10.0.0.5/32 lookup main",
		"rule 512 to 10.1.0.6/32 lookup main",
		"rule 1536 from 10.1.0.6/32 lookup 3",
	})
	wantState(t, "pod A", nsA, wiredPodV4(9001, "10.0.0.5", hostMAC(t, n, vethA)))
	wantState(t, "pod B", nsB, wiredPodV4(1500, "10.1.0.6", hostMAC(t, n, vethB)))
	for key, want := range map[string]string{"accept_ra": "0", "accept_redirects": "1", "forwarding": "0"} {
		if got := readSysctl(t, n, "net/ipv6/conf/"+vethA+"/"+key); got != want {
			t.Errorf("host veth %s = %s, want %s", key, got, want)
		}
	}

	for _, c := range []struct {
		name     string
		from, to ns.NetNS
		ip       string
	}{
		{"pod A to pod B", nsA, nsB, "10.1.0.6"},
		{"pod B to pod A", nsB, nsA, "10.0.0.5"},
		{"pod A to node", nsA, n.ns, "192.168.0.10"},
		{"node to pod B", n.ns, nsB, "10.1.0.6"},
	} {
		if err := podnettest.Connect(c.from.Path(), c.to.Path(), net.ParseIP(c.ip)); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}

	n.do(t, func() error { return Check(ctx, podA) })
	n.do(t, func() error { return Check(ctx, podB) })

	// Setup again (a retried ADD after the runtime's DEL never came) must
	// replace the stale veth, not fail.
	n.do(t, func() error {
		if err := Teardown(ctx, podA); err != nil {
			return err
		}
		return Setup(ctx, podA)
	})
	n.do(t, func() error { return Check(ctx, podA) })

	// Teardown removes the node's routes and rules; the pairs stay until
	// their namespaces go (the kernel removes them then).
	podAState := snapshot(t, nsA)
	n.do(t, func() error { return Teardown(ctx, podA) })
	n.do(t, func() error { return Teardown(ctx, podB) })
	wantState(t, "node after teardown", n.ns, []string{"link " + vethA + " veth up mtu 9001", "link " + vethB + " veth up mtu 1500"})
	wantState(t, "pod A after teardown", nsA, podAState)
	if err := podnettest.Probe(n.ns.Path(), nsB.Path(), net.ParseIP("10.1.0.6")); err == nil {
		t.Error("node still reaches pod B after teardown")
	}
	gone := podA
	gone.NetNS = "/var/run/netns/vpc-cni-gone"
	if err := n.run(func() error { return Check(ctx, gone) }); err == nil || !strings.Contains(err.Error(), "pod netns /var/run/netns/vpc-cni-gone missing") {
		t.Errorf("Check of a pod whose netns is gone = %v", err)
	}
	// Undo (ADD's rollback) deletes the pair it can prove is its own.
	n.do(t, func() error { return undo(ctx, podA) })
	wantState(t, "pod A after undo", nsA, nil)
	// Twice, and with the pod netns gone, is still success.
	n.do(t, func() error { return Teardown(ctx, podA) })
	if err := nsB.Close(); err != nil {
		t.Fatal(err)
	}
	if err := podnettest.RemoveNS(nsB.Path()); err != nil {
		t.Fatal(err)
	}
	n.do(t, func() error { return Teardown(ctx, podB) })
	n.do(t, func() error { return undo(ctx, podB) })
	if err := podnettest.WaitLinksGone(n.ns.Path(), linkGoneTimeout, vethB); err != nil {
		t.Fatal(err)
	}
	wantState(t, "node after pod B's netns went", n.ns, nil)
}

// linkGoneTimeout bounds the kernel's asynchronous removal of a released
// namespace's veths on a loaded machine.
const linkGoneTimeout = 30 * time.Second

// undo runs Undo and fails on any link it left alone: in these tests every
// link is the plugin's.
func undo(ctx context.Context, pod Pod) error {
	skipped, err := Undo(ctx, pod)
	if err == nil && len(skipped) > 0 {
		return fmt.Errorf("undo skipped links of its own: %q", skipped)
	}
	return err
}

func undoBranch(ctx context.Context, pod Pod, vlan int) error {
	skipped, err := UndoBranch(ctx, pod, vlan)
	if err == nil && len(skipped) > 0 {
		return fmt.Errorf("undo skipped links of its own: %q", skipped)
	}
	return err
}

func TestPrivilegedCheckReportsMissingPieces(t *testing.T) {
	ctx := context.Background()
	n := newNode(t, "192.168.0.10")
	podNS := testutil.NewNS(t)
	pod := Pod{NetNS: podNS.Path(), MTU: 9001, Interfaces: []Interface{iface("default", "a", "10.0.0.5", 0, 2)}}
	n.do(t, func() error { return Setup(ctx, pod) })
	n.do(t, func() error { return Check(ctx, pod) })

	// Break the pod's default route and the node's from-pod rule.
	err := podNS.Do(func(ns.NetNS) error {
		return netlink.RouteDel(&netlink.Route{Dst: defaultDst(false), Gw: Gateway(0, false)})
	})
	if err != nil {
		t.Fatal(err)
	}
	n.do(t, func() error { return netlink.RuleDel(fromPodRule(hostPrefix(net.ParseIP("10.0.0.5")), 2)) })

	err = n.run(func() error { return Check(ctx, pod) })
	var ce *CheckError
	if !errors.As(err, &ce) {
		t.Fatalf("Check after breaking the wiring = %v, want a *CheckError", err)
	}
	want := []string{
		"rule priority 1536 from 10.0.0.5 lookup 2 missing in host netns",
		"route 0.0.0.0/0 via 169.254.1.1 dev eth0 missing in pod netns",
	}
	if d := podnettest.Diff(want, ce.Problems); d != "" {
		t.Errorf("Check problems differ (-want +got):\n%s", d)
	}

	// With the veth gone both ends are reported by name.
	n.do(t, func() error { return undo(ctx, pod) })
	err = n.run(func() error { return Check(ctx, pod) })
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "link eth0 missing in pod netns") ||
		!strings.Contains(err.Error(), "link "+pod.Interfaces[0].HostVeth+" missing in host netns") {
		t.Errorf("Check after teardown = %v, want missing links named", err)
	}
}

func TestPrivilegedSetupIPv6(t *testing.T) {
	ctx := context.Background()
	n := newNode(t, "2001:db8:ff::10")
	nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
	podA := Pod{NetNS: nsA.Path(), MTU: 9001, Interfaces: []Interface{iface("default", "a6", "2001:db8::5", 0, 0)}}
	podB := Pod{NetNS: nsB.Path(), MTU: 9001, Interfaces: []Interface{iface("default", "b6", "2001:db8:1::6", 0, 4)}}
	vethA := podA.Interfaces[0].HostVeth
	// A runtime may hand over a netns with IPv6 disabled; Setup enables it.
	if err := nsA.Do(func(ns.NetNS) error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/disable_ipv6", []byte("1"), 0o644)
	}); err != nil {
		t.Fatal(err)
	}
	n.do(t, func() error { return Setup(ctx, podA) })
	n.do(t, func() error { return Setup(ctx, podB) })

	wantState(t, "pod A", nsA, []string{
		"link eth0 veth up mtu 9001",
		"addr eth0 2001:db8::5/128",
		"neigh eth0 fe80::1 lladdr " + hostMAC(t, n, vethA) + " permanent",
		"route main fe80::1/128 dev eth0",
		"route main ::/0 via fe80::1 dev eth0",
	})
	wantState(t, "node", n.ns, []string{
		"link " + vethA + " veth up mtu 9001",
		"link " + podB.Interfaces[0].HostVeth + " veth up mtu 9001",
		"route main 2001:db8::5/128 dev " + vethA,
		"route main 2001:db8:1::6/128 dev " + podB.Interfaces[0].HostVeth,
		"rule 512 v6 to 2001:db8::5/128 lookup main",
		"rule 512 v6 to 2001:db8:1::6/128 lookup main",
		"rule 1536 v6 from 2001:db8:1::6/128 lookup 4",
	})
	// Setup returned only after DAD: the address is usable at once.
	if err := podnettest.Connect(nsA.Path(), nsB.Path(), net.ParseIP("2001:db8:1::6")); err != nil {
		t.Errorf("pod A to pod B: %v", err)
	}
	if err := podnettest.Connect(nsB.Path(), n.ns.Path(), n.ip); err != nil {
		t.Errorf("pod B to node: %v", err)
	}
	n.do(t, func() error { return Check(ctx, podA) })
	n.do(t, func() error { return undo(ctx, podA) })
	n.do(t, func() error { return undo(ctx, podB) })
	wantState(t, "node after undo", n.ns, nil)
}

func TestPrivilegedSetupMultiNIC(t *testing.T) {
	ctx := context.Background()
	n := newNode(t, "192.168.0.10")
	podNS := testutil.NewNS(t)
	pod := Pod{NetNS: podNS.Path(), MTU: 9001, Interfaces: []Interface{
		iface("default", "m", "10.0.0.7", 0, 0),
		// Network card 1, device 0: table 10000+0+100·1.
		iface("default", "m", "10.9.0.7", 1, 10100),
	}}
	h0, h1 := pod.Interfaces[0].HostVeth, pod.Interfaces[1].HostVeth
	n.do(t, func() error { return Setup(ctx, pod) })
	wantState(t, "pod", podNS, []string{
		"link eth0 veth up mtu 9001",
		"link mNicIf1 veth up mtu 9001",
		"addr eth0 10.0.0.7/32",
		"addr mNicIf1 10.9.0.7/32",
		"neigh eth0 169.254.1.1 lladdr " + hostMAC(t, n, h0) + " permanent",
		"neigh mNicIf1 169.254.1.2 lladdr " + hostMAC(t, n, h1) + " permanent",
		"route main 169.254.1.1/32 dev eth0 scope link",
		"route main 0.0.0.0/0 via 169.254.1.1 dev eth0",
		"route 1 169.254.1.2/32 dev mNicIf1 scope link",
		"route 1 0.0.0.0/0 via 169.254.1.2 dev mNicIf1",
		"rule 1 from 10.9.0.7/32 lookup 1",
	})
	wantState(t, "node", n.ns, []string{
		"link " + h0 + " veth up mtu 9001",
		"link " + h1 + " veth up mtu 9001",
		"route main 10.0.0.7/32 dev " + h0 + " scope link",
		"route main 10.9.0.7/32 dev " + h1 + " scope link",
		"rule 512 to 10.0.0.7/32 lookup main",
		"rule 512 to 10.9.0.7/32 lookup main",
		"rule 1536 from 10.9.0.7/32 lookup 10100",
	})
	n.do(t, func() error { return Check(ctx, pod) })
	// Traffic from the second interface's address leaves through it.
	if err := podnettest.Connect(podNS.Path(), n.ns.Path(), n.ip); err != nil {
		t.Errorf("pod to node: %v", err)
	}
	n.do(t, func() error { return undo(ctx, pod) })
	wantState(t, "node after teardown", n.ns, nil)
}

func TestPrivilegedSetupFailsOnMissingNetNS(t *testing.T) {
	n := newNode(t, "192.168.0.10")
	pod := Pod{NetNS: "/var/run/netns/vpc-cni-does-not-exist", MTU: 9001, Interfaces: []Interface{iface("default", "x", "10.0.0.9", 0, 0)}}
	err := n.run(func() error { return Setup(context.Background(), pod) })
	if err == nil || !strings.Contains(err.Error(), pod.NetNS) {
		t.Fatalf("Setup into a missing netns = %v, want an error naming it", err)
	}
	// Nothing is left on the node.
	wantState(t, "node", n.ns, nil)
}

func TestValidate(t *testing.T) {
	good := iface("default", "a", "10.0.0.5", 0, 0)
	for _, c := range []struct {
		name string
		pod  Pod
		want string
	}{
		{"no netns", Pod{Interfaces: []Interface{good}}, "netns path is empty"},
		{"no interfaces", Pod{NetNS: "/x"}, "no interfaces"},
		{"no address", Pod{NetNS: "/x", Interfaces: []Interface{{HostVeth: "h", ContainerIf: "c"}}}, "no pod address"},
		{"no names", Pod{NetNS: "/x", Interfaces: []Interface{{Address: good.Address}}}, "names are required"},
	} {
		err := Setup(context.Background(), c.pod)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Setup = %v, want error containing %q", c.name, err, c.want)
		}
	}
}
