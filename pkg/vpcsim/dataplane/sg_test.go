package dataplane

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

var (
	all4 = netip.MustParsePrefix("0.0.0.0/0")
	// sgClient sends anything and accepts nothing unsolicited; sgServer
	// accepts the whoami port from members of sgClient.
	sgClient = vpcsim.SecurityGroupView{ID: "sg-client", Rules: []vpcsim.SecurityGroupRuleView{
		{ID: "sgr-c-out", Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: all4},
	}}
	whoamiFromClients = vpcsim.SecurityGroupRuleView{ID: "sgr-s-in", Protocol: "tcp", FromPort: WhoamiPort, ToPort: WhoamiPort, Group: "sg-client"}
)

func sgServer(ingress ...vpcsim.SecurityGroupRuleView) vpcsim.SecurityGroupView {
	return vpcsim.SecurityGroupView{ID: "sg-server", Rules: append([]vpcsim.SecurityGroupRuleView{
		{ID: "sgr-s-out", Egress: true, Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: all4},
	}, ingress...)}
}

// node A's eni-a0 is a client, node B's eni-b0 a server.
func twoNodeSecurity(server vpcsim.SecurityGroupView) vpcsim.SecurityGroupsChanged {
	return vpcsim.SecurityGroupsChanged{
		Groups: []vpcsim.SecurityGroupView{sgClient, server},
		ENIs: []vpcsim.ENISecurity{
			{ENIID: "eni-a0", Groups: []string{"sg-client"}, Addresses: []netip.Prefix{netip.PrefixFrom(nodeAIP, 32)}},
			{ENIID: "eni-b0", Groups: []string{"sg-server"}, Addresses: []netip.Prefix{netip.PrefixFrom(nodeBIP, 32)}},
		},
	}
}

func drops(t *testing.T, d *Dataplane, eni, dir string) (uint64, []string) {
	t.Helper()
	ds, err := d.SGDrops()
	must(t, err)
	for _, x := range ds {
		if x.ENIID == eni && x.Direction == dir {
			return x.Packets, x.Groups
		}
	}
	return 0, nil
}

func TestPrivilegedSecurityGroupsAreStatefulAndCountDrops(t *testing.T) {
	d := newTwoNodeVPC(t)
	nsA, nsB := nodeNS(t, d, "i-a"), nodeNS(t, d, "i-b")
	serveWhoami(t, nsA, nodeAIP)
	serveWhoami(t, nsB, nodeBIP)
	must(t, d.SetSecurity(twoNodeSecurity(sgServer(whoamiFromClients))))

	// allowed out of A and into B (a referenced group): the reply reaches A
	// although A's groups allow no inbound traffic at all
	if got, err := whoami(t, nsA, netip.Addr{}, nodeBIP); err != nil || got != nodeAIP {
		t.Fatalf("client A -> server B: saw %v, err %v", got, err)
	}
	if n, _ := drops(t, d, "eni-a0", "ingress"); n != 0 {
		t.Fatalf("the reply to A's own flow was counted as %d drops", n)
	}
	// unsolicited inbound to A is dropped, and counted against A's group
	if _, err := probe(t, nsB, netip.Addr{}, nodeAIP); err == nil {
		t.Fatal("server B opened a connection to client A, whose groups allow no inbound traffic")
	}
	n, groups := drops(t, d, "eni-a0", "ingress")
	if n == 0 || !slices.Equal(groups, []string{"sg-client"}) {
		t.Fatalf("drops into eni-a0: %d packets, groups %v; want >0 and [sg-client]", n, groups)
	}
}

func TestPrivilegedSecurityGroupRevokeIsLive(t *testing.T) {
	d := newTwoNodeVPC(t)
	nsA, nsB := nodeNS(t, d, "i-a"), nodeNS(t, d, "i-b")
	serveWhoami(t, nsB, nodeBIP)
	must(t, d.SetSecurity(twoNodeSecurity(sgServer(whoamiFromClients))))
	if _, err := whoami(t, nsA, netip.Addr{}, nodeBIP); err != nil {
		t.Fatalf("before revoke: %v", err)
	}
	must(t, d.SetSecurity(twoNodeSecurity(sgServer())))
	if _, err := probe(t, nsA, netip.Addr{}, nodeBIP); err == nil {
		t.Fatal("after revoking the server's only ingress rule, client A still connects")
	}
	if n, _ := drops(t, d, "eni-b0", "ingress"); n == 0 {
		t.Fatal("the refused connection was not counted on eni-b0")
	}
	// and a CIDR rule brings it back
	must(t, d.SetSecurity(twoNodeSecurity(sgServer(vpcsim.SecurityGroupRuleView{Protocol: "tcp", FromPort: 1, ToPort: 65000, CIDR: subnetA}))))
	if _, err := whoami(t, nsA, netip.Addr{}, nodeBIP); err != nil {
		t.Fatalf("after authorizing the client subnet: %v", err)
	}
	// egress is enforced too: a client group without egress rules sends nothing
	noEgress := twoNodeSecurity(sgServer(whoamiFromClients))
	noEgress.Groups[0] = vpcsim.SecurityGroupView{ID: "sg-client"}
	must(t, d.SetSecurity(noEgress))
	if _, err := probe(t, nsA, netip.Addr{}, nodeBIP); err == nil {
		t.Fatal("client A connects with no egress rule")
	}
	if n, _ := drops(t, d, "eni-a0", "egress"); n == 0 {
		t.Fatal("the refused egress was not counted on eni-a0")
	}
}

func TestPrivilegedBranchStandinFollowsAssociation(t *testing.T) {
	d := newTwoNodeVPC(t)
	nsA, nsB := nodeNS(t, d, "i-a"), nodeNS(t, d, "i-b")
	branchIP := netip.MustParseAddr("10.0.1.50")
	b := Branch{ENIID: "eni-br", TrunkENIID: "eni-trunk", VLAN: 7, MAC: mustMAC("02:00:00:00:0a:77"), PrimaryIP: branchIP, Subnet: subnetA}
	// associated before its trunk is attached: nothing appears yet
	must(t, d.AssociateBranch(b))
	if linkIn(t, nsA, StandinName(7)) != nil {
		t.Fatal("stand-in appeared before its trunk is attached")
	}
	must(t, d.AttachNIC("i-a", NIC{ENIID: "eni-trunk", MAC: macA1, PrimaryIP: netip.MustParseAddr("10.0.1.11"), Subnet: subnetA, DeviceIndex: 2}))
	l := linkIn(t, nsA, StandinName(7))
	if l == nil {
		t.Fatal("no stand-in after the trunk attached")
	}
	if l.Attrs().Alias != StandinAlias || l.Attrs().HardwareAddr.String() != b.MAC.String() {
		t.Fatalf("stand-in alias %q MAC %s, want %q %s", l.Attrs().Alias, l.Attrs().HardwareAddr, StandinAlias, b.MAC)
	}
	// the plugin's part, by hand: address the link, route via the subnet router
	configureLink(t, nsA, StandinName(7), netip.PrefixFrom(branchIP, subnetA.Bits()))
	serveWhoami(t, nsB, nodeBIP)
	if got, err := whoami(t, nsA, branchIP, nodeBIP); err != nil || got != branchIP {
		t.Fatalf("branch -> node B: saw %v, err %v", got, err)
	}
	// the branch's own group applies: no egress, no traffic
	sec := twoNodeSecurity(sgServer(vpcsim.SecurityGroupRuleView{Protocol: "-1", FromPort: -1, ToPort: -1, CIDR: subnetA}))
	sec.Groups = append(sec.Groups, vpcsim.SecurityGroupView{ID: "sg-branch"})
	sec.ENIs = append(sec.ENIs, vpcsim.ENISecurity{ENIID: "eni-br", Groups: []string{"sg-branch"}, Addresses: []netip.Prefix{netip.PrefixFrom(branchIP, 32)}})
	must(t, d.SetSecurity(sec))
	if _, err := probe(t, nsA, branchIP, nodeBIP); err == nil {
		t.Fatal("branch with an egress-less group still connects")
	}
	if n, groups := drops(t, d, "eni-br", "egress"); n == 0 || !slices.Equal(groups, []string{"sg-branch"}) {
		t.Fatalf("branch egress drops %d groups %v", n, groups)
	}
	must(t, d.DisassociateBranch("eni-br"))
	if linkIn(t, nsA, StandinName(7)) != nil {
		t.Fatal("stand-in left after disassociation")
	}
	// re-associated, then its trunk detaches: the stand-in goes with it
	must(t, d.AssociateBranch(b))
	if linkIn(t, nsA, StandinName(7)) == nil {
		t.Fatal("no stand-in after re-association")
	}
	must(t, d.DetachNIC("eni-trunk"))
	if linkIn(t, nsA, StandinName(7)) != nil {
		t.Fatal("stand-in left after its trunk detached")
	}
	if strings.Contains(StandinName(4094), " ") || len(StandinName(4094)) > 15 {
		t.Fatalf("stand-in name %q is not a valid link name", StandinName(4094))
	}
}

// configureLink does what the plugin does with an adopted stand-in: link
// up, the branch address, and a table that sends the branch's traffic out
// of the link to the subnet router.
func configureLink(t *testing.T, path, ifName string, addr netip.Prefix) {
	t.Helper()
	gw := routerAddr(addr)
	withHandle(t, path, func(h *netlink.Handle) error {
		l, err := h.LinkByName(ifName)
		if err != nil {
			return err
		}
		if err := h.LinkSetUp(l); err != nil {
			return err
		}
		if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(netip.PrefixFrom(addr.Addr(), 32))}); err != nil {
			return err
		}
		const table = 107
		if err := h.RouteAdd(&netlink.Route{Dst: ipNet(netip.PrefixFrom(gw, 32)), LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK, Table: table}); err != nil {
			return err
		}
		if err := h.RouteAdd(&netlink.Route{Dst: ipNet(all4), Gw: gw.AsSlice(), LinkIndex: l.Attrs().Index, Table: table}); err != nil {
			return err
		}
		r := netlink.NewRule()
		r.Src = ipNet(netip.PrefixFrom(addr.Addr(), 32))
		r.Table = table
		r.Priority = 10
		return h.RuleAdd(r)
	})
}
