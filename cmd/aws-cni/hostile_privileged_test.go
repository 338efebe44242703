package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedHostileRuntime plays a hostile or buggy runtime against a
// node with an eth0 (its default route behind it) and a running pod B.
// DEL and failing ADD point CNI_NETNS at the node's own namespace and at
// pod B's, with CNI_IFNAME eth0 and lo. Afterwards the node's and pod B's
// links (with their ifindexes and MACs), addresses, routes, neighbours and
// rules are byte-identical to before, and B still carries traffic.
func TestPrivilegedHostileRuntime(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	addNodeENI(t, n)
	ipamd := startFakeIpamd(t,
		allocation{ip: "10.0.0.20", routeTable: 254},
		allocation{ip: "10.0.0.21", routeTable: 254},
		allocation{ip: "10.0.0.22", routeTable: 254},
		allocation{ip: "10.0.0.23", routeTable: 254},
		allocation{ip: "10.0.0.24", deviceNumber: 1, routeTable: 2},
	)
	nsB := testutil.NewNS(t)
	logFile := filepath.Join(t.TempDir(), "plugin.log")
	conf := netconf("1.0.0", nil, map[string]any{"pluginLogFile": logFile})
	podB := call{command: "ADD", containerID: "ctr-b", netns: nsB.Path(), ifName: "eth0", podName: "b", podNS: "default", conf: conf, ipamd: ipamd.socket}
	n.run(t, podB).mustSucceed(t, "ADD pod b")
	// The kernel finishes the veth after ADD returns (carrier, then the
	// IPv6 link-local address and its DAD): snapshot it settled, or that
	// shows as a change the hostile calls made.
	if err := podnettest.WaitIPv6Ready(context.Background(), n.ns.Path(), vethname.HostVethName("eni", "default", "b", 0)); err != nil {
		t.Fatal(err)
	}
	if err := podnettest.WaitIPv6Ready(context.Background(), nsB.Path(), "eth0"); err != nil {
		t.Fatal(err)
	}

	nodeBefore, bBefore := fullState(t, n.ns.Path()), fullState(t, nsB.Path())
	same := func(t *testing.T, what string) {
		t.Helper()
		if d := podnettest.Diff(nodeBefore, fullState(t, n.ns.Path())); d != "" {
			t.Errorf("%s changed the node (-before +after):\n%s", what, d)
		}
		if d := podnettest.Diff(bBefore, fullState(t, nsB.Path())); d != "" {
			t.Errorf("%s changed pod b (-before +after):\n%s", what, d)
		}
	}

	targets := []struct{ name, netns string }{{"the node's netns", n.ns.Path()}, {"pod b's netns", nsB.Path()}}
	for i, target := range targets {
		for _, ifName := range []string{"eth0", "lo"} {
			evil := call{containerID: fmt.Sprintf("ctr-evil-%d-%s", i, ifName), netns: target.netns, ifName: ifName,
				podName: "evil-" + ifName, podNS: "default", conf: conf, ipamd: ipamd.socket}
			what := fmt.Sprintf("%s with %s", target.name, ifName)

			// DEL of a container ipamd does not know. The CNI library
			// itself answers a DEL into the plugin's own netns with code 8
			// once the plugin returned; the plugin touched nothing there.
			evil.command = "DEL"
			delOut := func(o outcome, what string) {
				t.Helper()
				if target.netns == n.ns.Path() {
					o.wantCode(t, what, types.ErrInvalidNetNS, "plugin's netns and netns from CNI_NETNS should not be the same")
				} else {
					o.mustSucceed(t, what)
				}
				same(t, what)
			}
			delOut(n.run(t, evil), "DEL into "+what)

			// DEL with ipamd down and a prevResult that names the target's
			// interface: the plugin tears down from the result alone.
			prev := fmt.Appendf(nil, `{"cniVersion":"1.0.0","interfaces":[{"name":%q},{"name":%q,"sandbox":%q,"mac":"254"},{"name":%q,"mac":"0","sandbox":"0"}],"ips":[{"interface":1,"address":"10.0.0.99/32"}]}`,
				vethname.HostVethName("eni", "default", evil.podName, 0), ifName, target.netns, vethname.DummyName("default", evil.podName))
			down := evil
			down.conf, down.ipamd = netconf("1.0.0", prev, map[string]any{"pluginLogFile": logFile}), filepath.Join(t.TempDir(), "down.sock")
			delOut(n.run(t, down), "DEL with ipamd down into "+what)

			evil.command = "ADD"
			out := n.run(t, evil)
			if target.netns == n.ns.Path() {
				// Refused at the door: ipamd is never asked.
				out.wantCode(t, "ADD into "+what, types.ErrInvalidNetNS, "CNI_NETNS: network namespace "+n.ns.Path()+" is the plugin's own network namespace")
				if len(ipamd.addsFor(evil.containerID)) != 0 {
					t.Errorf("ADD into %s reached ipamd", what)
				}
			} else if ifName == "lo" {
				// Refused at the door too: no ADD can wire the loopback.
				out.wantCode(t, "ADD into "+what, types.ErrInvalidEnvironmentVariables, `CNI_IFNAME "lo" is the namespace's loopback interface`)
				if len(ipamd.addsFor(evil.containerID)) != 0 {
					t.Errorf("ADD into %s reached ipamd", what)
				}
			} else {
				out.wantCode(t, "ADD into "+what, ErrWiring, "file exists")
				if got := ipamd.releases(evil.containerID); !slices.Contains(got, releaseReason) {
					t.Errorf("ADD into %s: ipamd saw releases %q, want %s", what, got, releaseReason)
				}
			}
			same(t, "failing ADD into "+what)
		}
	}

	// A pod ipamd does know, deleted with CNI_NETNS pointing at pod b: its
	// own address and routes go, b and the node stay as they were.
	nsE := testutil.NewNS(t)
	evil := call{command: "ADD", containerID: "ctr-evil-real", netns: nsE.Path(), ifName: "eth0", podName: "evil", podNS: "default", conf: conf, ipamd: ipamd.socket}
	n.run(t, evil).mustSucceed(t, "ADD pod evil")
	evil.command, evil.netns = "DEL", nsB.Path()
	n.run(t, evil).mustSucceed(t, "DEL of pod evil naming pod b's netns")
	if ipamd.holds(evil.containerID) {
		t.Error("DEL naming another netns did not release the pod's own address")
	}
	n.sandboxGone(t, nsE, vethname.HostVethName("eni", "default", "evil", 0))
	same(t, "DEL of a real pod naming pod b's netns")

	if err := podnettest.Connect(n.ns.Path(), nsB.Path(), net.ParseIP("10.0.0.20")); err != nil {
		t.Errorf("node to pod b after the hostile runtime: %v", err)
	}
	logged, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"CNI_NETNS is not a pod's network namespace; nothing inside it is touched",
		"rollback left eth0 in " + nsB.Path() + " alone: host veth " + vethname.HostVethName("eni", "default", "evil-eth0", 0) + ", its expected peer, does not exist",
	} {
		if !strings.Contains(string(logged), want) {
			t.Errorf("plugin log lacks %q", want)
		}
	}
}

// TestPrivilegedAddRefusesBadNetNS: ADD names CNI_NETNS and the reason
// before asking ipamd for anything.
func TestPrivilegedAddRefusesBadNetNS(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t, allocation{ip: "10.0.0.30", routeTable: 254})
	notNS := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(notNS, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ netns, want string }{
		{"/var/run/netns/vpc-cni-absent", "CNI_NETNS: network namespace /var/run/netns/vpc-cni-absent does not exist"},
		{notNS, "CNI_NETNS: network namespace " + notNS + " is not a network namespace"},
		{"/proc/self/ns/mnt", "CNI_NETNS: network namespace /proc/self/ns/mnt is not a network namespace"},
	} {
		add := call{command: "ADD", containerID: "ctr-ns", netns: c.netns, ifName: "eth0", podName: "ns", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
		n.run(t, add).wantCode(t, "ADD with CNI_NETNS "+c.netns, types.ErrInvalidNetNS, c.want)
	}
	if got := ipamd.addsFor("ctr-ns"); len(got) != 0 {
		t.Errorf("ipamd was asked %d times", len(got))
	}
	wantState(t, "node", n.ns.Path(), nil)
}

// TestPrivilegedBadInputAtTheDoor: every bad runtime input is refused
// before ipamd is asked, with a message naming the input and its limit.
func TestPrivilegedBadInputAtTheDoor(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t, allocation{ip: "10.0.0.31", routeTable: 254})
	podNS := testutil.NewNS(t)
	base := call{command: "ADD", containerID: "ctr-in", netns: podNS.Path(), ifName: "eth0", podName: "in", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	for _, c := range []struct {
		name string
		mod  func(*call)
		code uint
		want string
	}{
		{"CNI_IFNAME too long", func(c *call) { c.ifName = "a-sixteen-chars!" }, types.ErrInvalidEnvironmentVariables, `CNI_IFNAME "a-sixteen-chars!" is 16 characters long, at most 15 allowed`},
		{"CNI_IFNAME with a slash", func(c *call) { c.ifName = "eth/0" }, types.ErrInvalidEnvironmentVariables, `CNI_IFNAME "eth/0" contains '/'`},
		{"mtu out of range", func(c *call) { c.conf = netconf("1.0.0", nil, map[string]any{"mtu": "65536"}) }, types.ErrInvalidNetworkConfig, `netconf mtu "65536" is not an integer in 576-9001`},
		{"vethPrefix blank", func(c *call) { c.conf = netconf("1.0.0", nil, map[string]any{"vethPrefix": " "}) }, types.ErrInvalidNetworkConfig, `netconf vethPrefix: veth prefix " ": character ' ' is not allowed`},
		{"empty CNI_CONTAINERID", func(c *call) { c.containerID = "" }, types.ErrInvalidEnvironmentVariables, "required env variables [CNI_CONTAINERID] missing"},
		// Valid JSON a runtime could send, one unknown key making it
		// 2 MiB: only its size is wrong.
		{"stdin over 1 MiB", func(c *call) { c.conf = netconf("1.0.0", nil, map[string]any{"pad": strings.Repeat("x", 2<<20)}) }, types.ErrInvalidNetworkConfig, "stdin (the network configuration) is over 1048576 bytes"},
	} {
		call := base
		c.mod(&call)
		n.run(t, call).wantCode(t, c.name, c.code, c.want)
		del := call
		del.command = "DEL"
		n.run(t, del).wantCode(t, "DEL with "+c.name, c.code, c.want)
	}
	if got := ipamd.addsFor("ctr-in"); len(got) != 0 {
		t.Errorf("ipamd was asked %d times", len(got))
	}
	wantState(t, "node", n.ns.Path(), nil)
	wantState(t, "pod", podNS.Path(), nil)
}

// addNodeENI gives the node an eth0 cabled to a VPC namespace, with the
// node's address and a default route through it, as a real node has.
func addNodeENI(t *testing.T, n node) {
	t.Helper()
	vpc := testutil.NewNS(t)
	err := n.ns.Do(func(ns.NetNS) error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0", MTU: 9001}, PeerName: "vpc0", PeerNamespace: netlink.NsFd(int(vpc.Fd()))}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		addr, _ := netlink.ParseIPNet("192.168.0.11/24")
		if err := netlink.AddrAdd(l, &netlink.Addr{IPNet: addr}); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Gw: net.ParseIP("192.168.0.1")})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fullState is the namespace's state as podnettest.Snapshot shows it plus
// every link's ifindex, MAC and flags, lo included, so a link deleted and
// re-created under the same name shows as a difference.
func fullState(t *testing.T, path string) []string {
	t.Helper()
	lines := snapshot(t, path)
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range links {
			a := l.Attrs()
			lines = append(lines, fmt.Sprintf("ifindex %d %s %s %v", a.Index, a.Name, a.HardwareAddr, a.Flags))
		}
		for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
			addrs, err := netlink.AddrList(nil, fam)
			if err != nil {
				return err
			}
			for _, ad := range addrs {
				lines = append(lines, fmt.Sprintf("addr-all %d %s", ad.LinkIndex, ad.IPNet))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	return lines
}
