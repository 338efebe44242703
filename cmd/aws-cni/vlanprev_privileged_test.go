package main

import (
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedDelRefusesVLANOutsideBranchTables: a prevResult's dummy
// interface carries a branch pod's VLAN id, and DEL of a branch pod
// removes routes of table 100+VLAN without asking ipamd. A VLAN id that is
// not one (negative, beyond 4094) or whose table is one of the kernel's
// own (153, 154, 155: tables default, main, local) makes the prevResult
// unusable: DEL goes by ipamd alone (down here, so it removes nothing and
// succeeds, not to be retried forever), and every route of the node
// stays: before, VLAN 154 flushed the node's main table, 155 its local
// table, and -100 (table 0, "any") every table.
func TestPrivilegedDelRefusesVLANOutsideBranchTables(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	addNodeENI(t, n)
	before, routesBefore := fullState(t, n.ns.Path()), allRoutes(t, n.ns.Path())
	if !slices.Contains(before, "route main 0.0.0.0/0 via 192.168.0.1 dev eth0") {
		t.Fatalf("setup: no default route in main: %q", before)
	}
	podNS := testutil.NewNS(t)
	for _, vlan := range []string{"153", "154", "155", "-100", "-5", "4095"} {
		prev := fmt.Appendf(nil, `{"cniVersion":"1.0.0","interfaces":[{"name":%q},{"name":"eth0","sandbox":%q,"mac":"0"},{"name":%q,"mac":%q}],"ips":[{"interface":1,"address":"10.0.5.9/32","gateway":"10.0.5.1"}]}`,
			vethname.HostVethName("vlan", "default", "sg", 0), podNS.Path(), vethname.DummyName("default", "sg"), vlan)
		del := call{command: "DEL", containerID: "ctr-sg-" + vlan, netns: podNS.Path(), ifName: "eth0", podName: "sg", podNS: "default",
			conf: netconf("1.0.0", prev, nil), ipamd: filepath.Join(t.TempDir(), "down.sock")}
		n.run(t, del).mustSucceed(t, "DEL with prevResult VLAN "+vlan)
		if d := podnettest.Diff(before, fullState(t, n.ns.Path())); d != "" {
			t.Errorf("DEL with prevResult VLAN %s changed the node (-before +after):\n%s", vlan, d)
		}
		if d := podnettest.Diff(routesBefore, allRoutes(t, n.ns.Path())); d != "" {
			t.Errorf("DEL with prevResult VLAN %s changed the node's routes (-before +after):\n%s", vlan, d)
		}
	}
}

// allRoutes lists every route of every table of the namespace at path,
// the local table and the kernel's own routes included.
func allRoutes(t *testing.T, path string) []string {
	t.Helper()
	var out []string
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		for _, fam := range []int{unix.AF_INET, unix.AF_INET6} {
			routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
			if err != nil {
				return err
			}
			for _, r := range routes {
				out = append(out, fmt.Sprintf("table %d type %d dst %v gw %v dev %d scope %d", r.Table, r.Type, r.Dst, r.Gw, r.LinkIndex, r.Scope))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestPrivilegedAddRefusesVLANOfKernelTable: ipamd answers a branch pod
// with VLAN id 154 (from the pod's annotation), whose table 100+154 is the
// node's main table. ADD fails naming the id and gives the address back;
// the node's default route stays. Before, the branch's default route
// replaced the node's own in main.
func TestPrivilegedAddRefusesVLANOfKernelTable(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	addNodeENI(t, n)
	trunk := addTrunk(t, n)
	mac, _ := net.ParseMAC("02:42:0a:02:00:38")
	// A stand-in carries the branch on this kernel without 802.1Q.
	s := podnettest.Standin{Node: n.ns, VPC: testutil.NewNS(t), VLANID: 154, MAC: mac, RouterCIDR: "10.2.0.1/24", PodIP: net.ParseIP("10.2.0.56")}
	if err := s.Plug(); err != nil {
		t.Fatal(err)
	}
	routesBefore := allRoutes(t, n.ns.Path())
	ipamd := startFakeIpamd(t)
	ipamd.branch = &branchReply{ip: "10.2.0.56", vlan: 154, mac: mac.String(), gw: "10.2.0.1", parent: int32(trunk)}
	podNS := testutil.NewNS(t)
	add := call{command: "ADD", containerID: "ctr-154", netns: podNS.Path(), ifName: "eth0", podName: "sg154", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	n.run(t, add).wantCode(t, "ADD of a branch pod with VLAN 154", ErrWiring, "VLAN id 154")
	if ipamd.holds("ctr-154") {
		t.Error("the address leaked: ipamd still holds it")
	}
	if d := podnettest.Diff(routesBefore, allRoutes(t, n.ns.Path())); d != "" {
		t.Errorf("ADD with VLAN 154 changed the node's routes (-before +after):\n%s", d)
	}
}
