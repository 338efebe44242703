package dataplane

import (
	"net"
	"net/netip"
	"testing"
)

func TestNICLinkNames(t *testing.T) {
	for _, tc := range []struct {
		card, dev int
		want      string
		primary   bool
	}{{0, 0, "eth0", true}, {0, 3, "eth3", false}, {1, 0, "eth100", false}, {3, 2, "eth302", false}} {
		nic := NIC{NetworkCard: tc.card, DeviceIndex: tc.dev}
		if got := nicLinkName(nic); got != tc.want || isPrimaryNIC(nic) != tc.primary {
			t.Errorf("card %d device %d: %s primary %t, want %s %t", tc.card, tc.dev, got, isPrimaryNIC(nic), tc.want, tc.primary)
		}
	}
}

// TestPrivilegedSecondNetworkCard: an ENI on network card 1 (device 0
// again) is hot-plugged as its own link, left for ipamd to configure, and
// its addresses leave by it and only by it.
func TestPrivilegedSecondNetworkCard(t *testing.T) {
	d := newTwoNodeVPC(t)
	nsA, nsB := nodeNS(t, d, "i-a"), nodeNS(t, d, "i-b")
	serveWhoami(t, nsB, nodeBIP)
	mac := mustMAC("02:00:00:00:0a:c1")
	eniIP := netip.MustParseAddr("10.0.1.40")
	sec := netip.MustParseAddr("10.0.1.41")
	must(t, d.RouteAddresses("eni-card1", []netip.Prefix{netip.PrefixFrom(sec, 32)}))
	must(t, d.AttachNIC("i-a", NIC{ENIID: "eni-card1", MAC: mac, PrimaryIP: eniIP, Subnet: subnetA, DeviceIndex: 0, NetworkCard: 1}))
	l := linkIn(t, nsA, "eth100")
	if l == nil {
		t.Fatal("no eth100 for the card-1 ENI")
	}
	if l.Attrs().HardwareAddr.String() != mac.String() || l.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("eth100: MAC %s up %t; want %s, down until ipamd configures it", l.Attrs().HardwareAddr, l.Attrs().Flags&net.FlagUp != 0, mac)
	}
	if e0 := linkIn(t, nsA, "eth0"); e0 == nil || e0.Attrs().HardwareAddr.String() != macA0.String() {
		t.Error("the primary eth0 changed")
	}
	configureSecondary(t, nsA, "eth100", netip.PrefixFrom(eniIP, 24), sec, routerAddr(subnetA), 10100)
	if got, err := whoami(t, nsA, sec, nodeBIP); err != nil || got != sec {
		t.Fatalf("card-1 address %s via eth100 -> node B: saw %v, err %v", sec, got, err)
	}
	// Attaching it again on the same card and device is a no-op; on another
	// card it is refused.
	must(t, d.AttachNIC("i-a", NIC{ENIID: "eni-card1", MAC: mac, PrimaryIP: eniIP, Subnet: subnetA, DeviceIndex: 0, NetworkCard: 1}))
	if err := d.AttachNIC("i-a", NIC{ENIID: "eni-card1", MAC: mac, PrimaryIP: eniIP, Subnet: subnetA, DeviceIndex: 0, NetworkCard: 2}); err == nil {
		t.Error("the same ENI attached on a second card")
	}
	must(t, d.DetachNIC("eni-card1"))
	if linkIn(t, nsA, "eth100") != nil {
		t.Error("eth100 still present after the detach")
	}
}
