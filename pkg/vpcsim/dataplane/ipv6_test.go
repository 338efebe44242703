package dataplane

import (
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

var (
	vpcBlockV6 = netip.MustParsePrefix("2600:1f14:abc:de00::/56")
	echoV6     = netip.MustParseAddr("2600:1f14:abc:de00::2")
	nodeAV6    = netip.MustParseAddr("2600:1f14:abc:de01::10")
	nodeBV6    = netip.MustParseAddr("2600:1f14:abc:de02::20")
	prefixAV6  = netip.MustParsePrefix("2600:1f14:abc:de01:1234::/80")
)

// newDualStackVPC is newTwoNodeVPC with IPv6 on: each primary ENI has an
// IPv6 address, node A also a delegated /80.
func newDualStackVPC(t *testing.T) *Dataplane {
	t.Helper()
	testutil.Privileged(t)
	d, err := New(Config{EchoAddrs: []netip.Addr{echoIP}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	prefix := RunPrefix(d.RunID())
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if left, err := ListNamespaces(prefix); err != nil || len(left) > 0 {
			t.Errorf("namespaces left after Close: %v (err %v)", left, err)
		}
	})
	must(t, d.EnableIPv6(IPv6Config{VPCBlocks: []netip.Prefix{vpcBlockV6}, EchoAddrs: []netip.Addr{echoV6}}))
	must(t, d.AddNode("i-a", nodeAIP, nodeAPub))
	must(t, d.AddNode("i-b", nodeBIP, netip.Addr{}))
	// EC2 assigns before the attachment completes; routes follow the plug.
	must(t, d.RouteAddresses("eni-a0", []netip.Prefix{netip.PrefixFrom(nodeAV6, 128), prefixAV6}))
	must(t, d.RouteAddresses("eni-b0", []netip.Prefix{netip.PrefixFrom(nodeBV6, 128)}))
	must(t, d.AttachNIC("i-a", NIC{ENIID: "eni-a0", MAC: macA0, PrimaryIP: nodeAIP, Subnet: subnetA, DeviceIndex: 0}))
	must(t, d.AttachNIC("i-b", NIC{ENIID: "eni-b0", MAC: macB0, PrimaryIP: nodeBIP, Subnet: subnetB, DeviceIndex: 0}))
	return d
}

func addNoDAD(t *testing.T, path, ifName string, a netip.Addr) {
	t.Helper()
	withHandle(t, path, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifName)
		if err != nil {
			return err
		}
		return h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(a, 128)), Flags: unix.IFA_F_NODAD})
	})
}

// TestPrivilegedIPv6RoutingAndSourceCheck: the VPC routes /128s and /80s to
// their ENI, drops IPv6 sources not assigned to the sending ENI, and
// follows unassignment.
func TestPrivilegedIPv6RoutingAndSourceCheck(t *testing.T) {
	d := newDualStackVPC(t)
	nsA, nsB := nodeNS(t, d, "i-a"), nodeNS(t, d, "i-b")
	serveWhoami(t, nsB, nodeBV6)

	if got, err := whoami(t, nsA, netip.Addr{}, nodeBV6); err != nil || got != nodeAV6 {
		t.Fatalf("node A -> node B over IPv6: saw %v, err %v; want %s", got, err, nodeAV6)
	}
	if got, err := whoami(t, nsB, netip.Addr{}, echoV6); err != nil || got != nodeBV6 {
		t.Errorf("node B -> VPC echo over IPv6: saw %v, err %v", got, err)
	}
	// An address of A's delegated /80 (where its pods live) is routed both ways.
	pod := netip.MustParseAddr("2600:1f14:abc:de01:1234::5")
	addNoDAD(t, nsA, "eth0", pod)
	if got, err := whoami(t, nsA, pod, nodeBV6); err != nil || got != pod {
		t.Errorf("/80 address %s -> node B: saw %v, err %v", pod, got, err)
	}
	// A source outside everything assigned to eni-a0 is dropped ...
	spoof := netip.MustParseAddr("2600:1f14:abc:de01:9999::1")
	addNoDAD(t, nsA, "eth0", spoof)
	if got, err := probe(t, nsA, spoof, nodeBV6); err == nil {
		t.Errorf("spoofed IPv6 source %s reached node B (seen as %s)", spoof, got)
	}
	// A source of another ENI of the same node leaving by eth0 is dropped
	// too, though the reply would find its way back (by eth1).
	other := netip.MustParsePrefix("2600:1f14:abc:de01:5555::/80")
	must(t, d.RouteAddresses("eni-a1", []netip.Prefix{other}))
	must(t, d.AttachNIC("i-a", NIC{ENIID: "eni-a1", MAC: macA1, PrimaryIP: netip.MustParseAddr("10.0.1.20"), Subnet: subnetA, DeviceIndex: 1}))
	withHandle(t, nsA, func(h *netlink.Handle) error {
		l, err := h.LinkByName("eth1")
		if err != nil {
			return err
		}
		return h.LinkSetUp(l)
	})
	wrongENI := netip.MustParseAddr("2600:1f14:abc:de01:5555::7")
	addNoDAD(t, nsA, "eth0", wrongENI)
	if got, err := probe(t, nsA, wrongENI, nodeBV6); err == nil {
		t.Errorf("eni-a1's %s left by eth0 and was accepted (seen as %s)", wrongENI, got)
	}
	// ... and the /80 after it is unassigned.
	must(t, d.UnrouteAddresses("eni-a0", []netip.Prefix{prefixAV6}))
	if got, err := probe(t, nsA, pod, nodeBV6); err == nil {
		t.Errorf("unassigned /80 still reaches node B (seen as %s)", got)
	}
}

// TestPrivilegedIPv6InternetGateway: every VPC address reaches the IPv6
// internet as itself (no NAT, public IP or not), and the internet reaches
// it back; addresses outside the VPC's block are not routed back.
func TestPrivilegedIPv6InternetGateway(t *testing.T) {
	d := newDualStackVPC(t)
	nsA, nsB := nodeNS(t, d, "i-a"), nodeNS(t, d, "i-b")
	inet := DefaultInternetV6Addrs[0]
	for ns, want := range map[string]netip.Addr{nsA: nodeAV6, nsB: nodeBV6} {
		if got, err := whoami(t, ns, netip.Addr{}, inet); err != nil || got != want {
			t.Errorf("node %s -> IPv6 internet: saw %v, err %v; want its own address", want, got, err)
		}
	}
	serveWhoami(t, nsB, nodeBV6)
	if _, err := whoami(t, d.InternetNS(), netip.Addr{}, nodeBV6); err != nil {
		t.Errorf("internet -> node B (no public IPv4) over IPv6: %v", err)
	}
	// The IPv4 rule is unchanged: B has no public IP.
	if got, err := probe(t, nsB, netip.Addr{}, DefaultInternetAddrs[0]); err == nil {
		t.Errorf("node B reached the IPv4 internet (seen as %s)", got)
	}
}

func TestPrivilegedIPv6RefusedUntilEnabled(t *testing.T) {
	d := newTwoNodeVPC(t)
	if err := d.RouteAddresses("eni-a0", []netip.Prefix{netip.PrefixFrom(nodeAV6, 128)}); err == nil {
		t.Error("IPv6 route accepted with IPv6 off")
	}
	if err := d.EnableIPv6(IPv6Config{}); err == nil {
		t.Error("EnableIPv6 accepted after ENIs were attached")
	}
}
