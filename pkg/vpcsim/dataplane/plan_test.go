package dataplane

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestNATPairsAreSortedByPrivateAddress(t *testing.T) {
	got := natPairs(map[netip.Addr]netip.Addr{
		netip.MustParseAddr("10.0.16.4"): netip.MustParseAddr("198.51.100.5"),
		netip.MustParseAddr("10.0.0.4"):  netip.MustParseAddr("198.51.100.4"),
	})
	if len(got) != 2 || got[0].private.String() != "10.0.0.4" || got[0].public.String() != "198.51.100.4" || got[1].private.String() != "10.0.16.4" {
		t.Errorf("natPairs = %v", got)
	}
	if len(natPairs(nil)) != 0 {
		t.Error("natPairs(nil) is not empty")
	}
}

func TestRouterAddrIsSubnetPlusOne(t *testing.T) {
	for in, want := range map[string]string{"10.0.0.0/20": "10.0.0.1", "10.0.16.7/20": "10.0.16.1", "100.64.32.0/19": "100.64.32.1"} {
		if got := routerAddr(netip.MustParsePrefix(in)); got.String() != want {
			t.Errorf("routerAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestValidNICNamesTheProblem(t *testing.T) {
	mac, _ := net.ParseMAC("02:00:00:00:00:01")
	good := NIC{ENIID: "eni-1", MAC: mac, PrimaryIP: netip.MustParseAddr("10.0.0.4"), Subnet: netip.MustParsePrefix("10.0.0.0/20")}
	if err := validNIC(good); err != nil {
		t.Fatalf("valid NIC rejected: %v", err)
	}
	cases := map[string]struct {
		mod  func(*NIC)
		want string
	}{
		"no id":        {func(n *NIC) { n.ENIID = "" }, "without ENI id"},
		"short mac":    {func(n *NIC) { n.MAC = mac[:3] }, "MAC"},
		"ipv6 primary": {func(n *NIC) { n.PrimaryIP = netip.MustParseAddr("2600::1") }, "not IPv4"},
		"outside":      {func(n *NIC) { n.PrimaryIP = netip.MustParseAddr("10.1.0.4") }, "outside subnet"},
		"device":       {func(n *NIC) { n.DeviceIndex = 100 }, "device index 100"},
	}
	for name, c := range cases {
		n := good
		c.mod(&n)
		if err := validNIC(n); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to mention %q", name, err, c.want)
		}
	}
}

func TestRunIDsEmbedTheOwnerPid(t *testing.T) {
	id := NewRunID()
	got, ok := RunIDOf(RunPrefix(id) + "vpc")
	if !ok || got != id {
		t.Fatalf("RunIDOf(%q) = %q, %v; want %q", RunPrefix(id)+"vpc", got, ok, id)
	}
	if StaleRun(id) {
		t.Errorf("this process's run %s counted as stale", id)
	}
	if !StaleRun("999999999x0a") {
		t.Error("a run of a pid beyond pid_max is not stale")
	}
	if _, ok := RunIDOf("cnitest-1234"); ok {
		t.Error("RunIDOf accepted a foreign namespace name")
	}
}

func TestRefusesNamesOutsideOurPrefix(t *testing.T) {
	if err := Cleanup("cnitest-"); err == nil {
		t.Error("Cleanup accepted a prefix of other software")
	}
	if _, err := NewNamedNS("pod-1"); err == nil || !strings.Contains(err.Error(), NamePrefix) {
		t.Errorf("NewNamedNS without our prefix: err = %v", err)
	}
}
