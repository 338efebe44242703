package dataplane

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

var (
	subnetA  = netip.MustParsePrefix("10.0.1.0/24")
	subnetB  = netip.MustParsePrefix("10.0.2.0/24")
	nodeAIP  = netip.MustParseAddr("10.0.1.10")
	nodeBIP  = netip.MustParseAddr("10.0.2.20")
	nodeAPub = netip.MustParseAddr("198.51.100.4")
	echoIP   = netip.MustParseAddr("10.0.0.2")
	macA0    = mustMAC("02:00:00:00:0a:00")
	macA1    = mustMAC("02:00:00:00:0a:01")
	macB0    = mustMAC("02:00:00:00:0b:00")
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// byRemoteAddr answers with the instance whose primary IP sent the request,
// the way IMDS tells instances apart.
type byRemoteAddr map[netip.Addr]string

func (m byRemoteAddr) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	id, ok := m[ap.Addr()]
	if err != nil || !ok {
		http.Error(w, "unknown instance", http.StatusNotFound)
		return
	}
	_, _ = io.WriteString(w, id)
}

// newTwoNodeVPC builds node A (public IP) and node B (no public IP), each
// with its primary ENI, and removes everything when the test ends.
func newTwoNodeVPC(t *testing.T) *Dataplane {
	t.Helper()
	testutil.Privileged(t)
	d, err := New(Config{
		EchoAddrs: []netip.Addr{echoIP},
		Services:  []Service{{Name: "imds", Addr: IMDSAddr, Handler: byRemoteAddr{nodeAIP: "i-a", nodeBIP: "i-b"}}},
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	prefix := RunPrefix(d.RunID())
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		left, err := ListNamespaces(prefix)
		if err != nil || len(left) > 0 {
			t.Errorf("namespaces left after Close: %v (err %v)", left, err)
		}
	})
	must(t, d.AddNode("i-a", nodeAIP, nodeAPub))
	must(t, d.AddNode("i-b", nodeBIP, netip.Addr{}))
	must(t, d.AttachNIC("i-a", NIC{ENIID: "eni-a0", MAC: macA0, PrimaryIP: nodeAIP, Subnet: subnetA, DeviceIndex: 0}))
	must(t, d.AttachNIC("i-b", NIC{ENIID: "eni-b0", MAC: macB0, PrimaryIP: nodeBIP, Subnet: subnetB, DeviceIndex: 0}))
	return d
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func nodeNS(t *testing.T, d *Dataplane, id string) string {
	t.Helper()
	p, err := d.NodeNS(id)
	must(t, err)
	return p
}

// linkIn returns the named link of the namespace at path, or nil.
func linkIn(t *testing.T, path, name string) netlink.Link {
	t.Helper()
	nsh, err := netns.GetFromPath(path)
	must(t, err)
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	must(t, err)
	defer h.Close()
	l, err := h.LinkByName(name)
	if err != nil {
		return nil
	}
	return l
}

// whoami is a connection expected to work: a generous timeout.
func whoami(t *testing.T, nsPath string, local netip.Addr, remote netip.Addr) (netip.Addr, error) {
	t.Helper()
	return whoamiWithin(30*time.Second, nsPath, local, remote)
}

// probe is a connection expected to fail: dropped packets only time out,
// so keep the wait short.
func probe(t *testing.T, nsPath string, local netip.Addr, remote netip.Addr) (netip.Addr, error) {
	t.Helper()
	return whoamiWithin(1500*time.Millisecond, nsPath, local, remote)
}

// whoamiWithin is Whoami with a deadline d away (Whoami itself asks again
// while a fresh link's neighbour discovery answers EHOSTUNREACH).
func whoamiWithin(d time.Duration, nsPath string, local, remote netip.Addr) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return Whoami(ctx, nsPath, local, netip.AddrPortFrom(remote, WhoamiPort))
}

func serveWhoami(t *testing.T, nsPath string, a netip.Addr) {
	t.Helper()
	c, err := ServeWhoami(nsPath, netip.AddrPortFrom(a, WhoamiPort))
	must(t, err)
	t.Cleanup(func() { _ = c.Close() })
}

func TestPrivilegedPrimaryENIIsConfiguredLikeTheAMI(t *testing.T) {
	d := newTwoNodeVPC(t)
	l := linkIn(t, nodeNS(t, d, "i-a"), "eth0")
	if l == nil {
		t.Fatal("node i-a has no eth0")
	}
	if got := l.Attrs().HardwareAddr.String(); got != macA0.String() {
		t.Errorf("eth0 MAC = %s, want the ENI's %s", got, macA0)
	}
	if l.Attrs().MTU != defaultMTU {
		t.Errorf("eth0 MTU = %d, want %d", l.Attrs().MTU, defaultMTU)
	}
	if l.Attrs().OperState != netlink.OperUp && l.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("eth0 is down")
	}
}

func TestPrivilegedNodeReachesItsOwnIMDSThroughEth0(t *testing.T) {
	d := newTwoNodeVPC(t)
	for id, want := range map[string]string{"i-a": "i-a", "i-b": "i-b"} {
		path := nodeNS(t, d, id)
		// expected to work: a generous timeout for a loaded CI machine
		client := http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return DialIn(ctx, path, netip.Addr{}, netip.MustParseAddrPort(addr))
			},
		}}
		resp, err := client.Get(fmt.Sprintf("http://%s/latest/meta-data/instance-id", IMDSAddr))
		if err != nil {
			t.Fatalf("%s: IMDS: %v", id, err)
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if string(body) != want {
			t.Errorf("%s: IMDS says instance %q, want %q", id, body, want)
		}
	}
}

func TestPrivilegedNodeToNodeAndSourceCheck(t *testing.T) {
	d := newTwoNodeVPC(t)
	nsA, nsB := nodeNS(t, d, "i-a"), nodeNS(t, d, "i-b")
	serveWhoami(t, nsB, nodeBIP)

	got, err := whoami(t, nsA, netip.Addr{}, nodeBIP)
	if err != nil {
		if os.Getenv("DP_PAUSE") != "" {
			time.Sleep(120 * time.Second)
		}
		t.Fatalf("node A -> node B: %v", err)
	}
	if got != nodeAIP {
		t.Errorf("node B saw %s, want node A's %s", got, nodeAIP)
	}
	if got, err := whoami(t, nsB, netip.Addr{}, echoIP); err != nil || got != nodeBIP {
		t.Errorf("node B -> VPC echo: saw %v, err %v; want %s", got, err, nodeBIP)
	}

	// A source the VPC never assigned to eni-a0 is dropped ...
	spoof := netip.MustParseAddr("10.0.1.99")
	addAddr(t, nsA, "eth0", netip.PrefixFrom(spoof, 32))
	if got, err := probe(t, nsA, spoof, nodeBIP); err == nil {
		t.Fatalf("spoofed source %s reached node B (seen as %s)", spoof, got)
	}
	// ... until EC2 assigns it to that ENI ...
	must(t, d.RouteAddresses("eni-a0", []netip.Prefix{netip.PrefixFrom(spoof, 32)}))
	if got, err := whoami(t, nsA, spoof, nodeBIP); err != nil || got != spoof {
		t.Fatalf("assigned secondary %s -> node B: saw %v, err %v", spoof, got, err)
	}
	// ... and again after it is unassigned.
	must(t, d.UnrouteAddresses("eni-a0", []netip.Prefix{netip.PrefixFrom(spoof, 32)}))
	if got, err := probe(t, nsA, spoof, nodeBIP); err == nil {
		t.Fatalf("unassigned %s still reaches node B (seen as %s)", spoof, got)
	}
}

func TestPrivilegedInternetOnlyFromPublicAddresses(t *testing.T) {
	d := newTwoNodeVPC(t)
	nsA, nsB := nodeNS(t, d, "i-a"), nodeNS(t, d, "i-b")
	inet := DefaultInternetAddrs[0]

	got, err := whoami(t, nsA, netip.Addr{}, inet)
	if err != nil || got != nodeAPub {
		t.Fatalf("public node A -> internet: saw %v, err %v; want its public IP %s", got, err, nodeAPub)
	}
	// The internet reaches node A through its public IP, and only so.
	serveWhoami(t, nsA, nodeAIP)
	if got, err := whoami(t, d.InternetNS(), netip.Addr{}, nodeAPub); err != nil || got != transitInet.Addr() {
		t.Errorf("internet -> node A's public IP: saw %v, err %v", got, err)
	}
	if got, err := probe(t, d.InternetNS(), netip.Addr{}, nodeAIP); err == nil {
		t.Errorf("internet reached node A's private address (seen as %s)", got)
	}
	if got, err := probe(t, nsB, netip.Addr{}, inet); err == nil {
		t.Errorf("node B has no public IP but reached the internet (seen as %s)", got)
	}
	// An assigned secondary address of the public node is still private.
	sec := netip.MustParseAddr("10.0.1.50")
	must(t, d.RouteAddresses("eni-a0", []netip.Prefix{netip.PrefixFrom(sec, 32)}))
	addAddr(t, nsA, "eth0", netip.PrefixFrom(sec, 32))
	if got, err := probe(t, nsA, sec, inet); err == nil {
		t.Errorf("secondary %s reached the internet (seen as %s)", sec, got)
	}
}

func TestPrivilegedHotPlugSecondaryENIWithPrefix(t *testing.T) {
	d := newTwoNodeVPC(t)
	nsA, nsB := nodeNS(t, d, "i-a"), nodeNS(t, d, "i-b")
	serveWhoami(t, nsB, nodeBIP)

	if l := linkIn(t, nsA, "eth1"); l != nil {
		t.Fatal("eth1 exists before the attach")
	}
	eniIP := netip.MustParseAddr("10.0.1.20")
	prefix := netip.MustParsePrefix("10.0.1.32/28")
	// EC2 may assign before the attachment completes; routes follow the plug.
	must(t, d.RouteAddresses("eni-a1", []netip.Prefix{prefix}))
	must(t, d.AttachNIC("i-a", NIC{ENIID: "eni-a1", MAC: macA1, PrimaryIP: eniIP, Subnet: subnetA, DeviceIndex: 1}))
	l := linkIn(t, nsA, "eth1")
	if l == nil {
		t.Fatal("eth1 did not appear after the attach")
	}
	if got := l.Attrs().HardwareAddr.String(); got != macA1.String() {
		t.Errorf("eth1 MAC = %s, want %s", got, macA1)
	}
	if l.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("eth1 is up before anyone configured it")
	}
	if got := d.RoutedAddresses("eni-a1"); len(got) != 2 || got[1] != prefix {
		t.Errorf("RoutedAddresses(eni-a1) = %v, want [%s/32 %s]", got, eniIP, prefix)
	}

	// Configure eth1 the way ipamd does: its own table and a source rule.
	podIP := netip.MustParseAddr("10.0.1.33")
	configureSecondary(t, nsA, "eth1", netip.PrefixFrom(eniIP, 24), podIP, routerAddr(subnetA), 2)
	if got, err := whoami(t, nsA, podIP, nodeBIP); err != nil || got != podIP {
		t.Fatalf("prefix address %s via eth1 -> node B: saw %v, err %v", podIP, got, err)
	}
	// The same address leaving by eth0 (the wrong ENI) is dropped.
	other := netip.MustParseAddr("10.0.1.34")
	addAddr(t, nsA, "eth0", netip.PrefixFrom(other, 32))
	if got, err := probe(t, nsA, other, nodeBIP); err == nil {
		t.Errorf("%s of eni-a1's prefix left by eth0 and was accepted (seen as %s)", other, got)
	}

	must(t, d.DetachNIC("eni-a1"))
	if l := linkIn(t, nsA, "eth1"); l != nil {
		t.Error("eth1 still present after the detach")
	}
	if got := d.RoutedAddresses("eni-a1"); got != nil {
		t.Errorf("detached ENI still routed: %v", got)
	}
	// Re-attaching restores its prefix routes.
	must(t, d.AttachNIC("i-a", NIC{ENIID: "eni-a1", MAC: macA1, PrimaryIP: eniIP, Subnet: subnetA, DeviceIndex: 1}))
	if got := d.RoutedAddresses("eni-a1"); len(got) != 2 {
		t.Errorf("re-attached ENI routes = %v, want its primary and %s", got, prefix)
	}
}

func TestPrivilegedAttachRejectsBadInput(t *testing.T) {
	d := newTwoNodeVPC(t)
	cases := map[string]struct {
		node string
		nic  NIC
		want string
	}{
		"unknown node": {"i-x", NIC{ENIID: "eni-x", MAC: macA1, PrimaryIP: nodeAIP, Subnet: subnetA}, `instance "i-x"`},
		"bad mac":      {"i-a", NIC{ENIID: "eni-x", MAC: net.HardwareAddr{1}, PrimaryIP: nodeAIP, Subnet: subnetA}, "MAC"},
		"ip outside":   {"i-a", NIC{ENIID: "eni-x", MAC: macA1, PrimaryIP: nodeBIP, Subnet: subnetA}, "outside subnet"},
		"same device":  {"i-a", NIC{ENIID: "eni-x", MAC: macA1, PrimaryIP: netip.MustParseAddr("10.0.1.77"), Subnet: subnetA}, "already has eth0"},
		"moved eni":    {"i-b", NIC{ENIID: "eni-a0", MAC: macA0, PrimaryIP: nodeAIP, Subnet: subnetA, DeviceIndex: 3}, "already attached to i-a"},
	}
	for name, c := range cases {
		err := d.AttachNIC(c.node, c.nic)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
}

func TestPrivilegedCleanupStaleRemovesOnlyDeadRuns(t *testing.T) {
	testutil.Privileged(t)
	dead := "999999999x0a" // beyond pid_max: no such process
	live := NewRunID()
	for _, name := range []string{RunPrefix(dead) + "vpc", RunPrefix(live) + "vpc"} {
		if _, err := createNamedNS(name); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = deleteNamedNS(NsPath(name)) })
	}
	removed, err := CleanupStale()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != RunPrefix(dead) {
		t.Errorf("CleanupStale removed %v, want only %s", removed, RunPrefix(dead))
	}
	if left, _ := ListNamespaces(RunPrefix(live)); len(left) != 1 {
		t.Errorf("live run's namespace was removed: %v", left)
	}
	if err := Cleanup("other-"); err == nil {
		t.Error("Cleanup accepted a prefix outside vpcsim-")
	}
	must(t, Cleanup(RunPrefix(live)))
	if left, _ := ListNamespaces(RunPrefix(live)); len(left) != 0 {
		t.Errorf("Cleanup left %v", left)
	}
}

func addAddr(t *testing.T, path, ifName string, p netip.Prefix) {
	t.Helper()
	withHandle(t, path, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifName)
		if err != nil {
			return err
		}
		return h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(p)})
	})
}

func configureSecondary(t *testing.T, path, ifName string, eniAddr netip.Prefix, src, gw netip.Addr, table int) {
	t.Helper()
	withHandle(t, path, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifName)
		if err != nil {
			return err
		}
		if err := h.LinkSetUp(l); err != nil {
			return err
		}
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(eniAddr)}); err != nil {
			return err
		}
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(src, 32))}); err != nil {
			return err
		}
		def := &netlink.Route{Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")), Gw: gw.AsSlice(), LinkIndex: l.Attrs().Index, Table: table}
		if err := h.RouteAdd(def); err != nil {
			return err
		}
		r := netlink.NewRule()
		r.Src = ipNet(netip.PrefixFrom(src, 32))
		r.Table = table
		r.Priority = 1536
		return h.RuleAdd(r)
	})
}

func withHandle(t *testing.T, path string, fn func(*netlink.Handle) error) {
	t.Helper()
	nsh, err := netns.GetFromPath(path)
	must(t, err)
	defer nsh.Close()
	h, err := netlink.NewHandleAt(nsh)
	must(t, err)
	defer h.Close()
	must(t, fn(h))
}
