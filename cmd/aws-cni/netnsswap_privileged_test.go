package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedAddNetNSSwappedToNode: CNI_NETNS is a symlink to a pod's
// namespace that a hostile runtime points at the node's own namespace
// while ipamd answers, and a stale host veth of the pod keeps ADD from
// making its pair ahead of the answer. The node keeps its routes and
// addresses (its default route via eth0 above all, which the pod's default
// route through the plugin's gateway would replace) and gets no pod
// interface; the ADD fails naming CNI_NETNS, gives the address back and
// leaves nothing in the pod's namespace, the one it checked and wired.
func TestPrivilegedAddNetNSSwappedToNode(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	addNodeENI(t, n)
	podNS := testutil.NewNS(t)
	link := filepath.Join(t.TempDir(), "netns")
	if err := os.Symlink(podNS.Path(), link); err != nil {
		t.Fatal(err)
	}
	ipamd := startFakeIpamd(t, allocation{ip: "10.0.0.40", routeTable: 254})
	ipamd.assigned = func() {
		next := link + ".next"
		if err := os.Symlink(n.ns.Path(), next); err != nil {
			t.Error(err)
			return
		}
		if err := os.Rename(next, link); err != nil {
			t.Error(err)
		}
	}
	hostVeth := vethname.HostVethName("eni", "default", "swap", 0)
	err := n.ns.Do(func(ns.NetNS) error {
		return netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostVeth}, PeerName: "stale0"})
	})
	if err != nil {
		t.Fatal(err)
	}
	before := routesAndAddrs(t, n.ns.Path())

	add := call{command: "ADD", containerID: "ctr-swap", netns: link, ifName: "eth1", podName: "swap", podNS: "default",
		conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	// Run by hand: before the node's state is checked, an outcome that is
	// no single CNI document must not end the test.
	stdout, _, runErr := n.runRaw(t, add)
	if target, err := os.Readlink(link); err != nil || target != n.ns.Path() {
		t.Fatalf("the symlink was not swapped to the node's namespace: %q, %v", target, err)
	}

	after := routesAndAddrs(t, n.ns.Path())
	for l := range before {
		if !after[l] {
			t.Errorf("node lost %s", l)
		}
	}
	err = n.ns.Do(func(ns.NetNS) error {
		if l, err := netlink.LinkByName("eth1"); err == nil {
			t.Errorf("the pod's interface eth1 (%s) is in the node's namespace", l.Type())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The path names another namespace than the one wired: no result
	// describes it, and the ADD is rolled back there.
	var e types.Error
	if runErr == nil || json.Unmarshal(stdout, &e) != nil {
		t.Fatalf("ADD: %v, want a single CNI error on stdout, got %s", runErr, stdout)
	}
	if want := "CNI_NETNS: network namespace " + link + " changed while the ADD wired it"; e.Code != types.ErrInvalidNetNS || !strings.Contains(e.Msg, want) {
		t.Errorf("ADD failed with code %d %q, want code %d containing %q", e.Code, e.Msg, types.ErrInvalidNetNS, want)
	}
	if got := ipamd.releases(add.containerID); !slices.Contains(got, releaseReason) {
		t.Errorf("ipamd saw releases %q, want %s", got, releaseReason)
	}
	wantState(t, "pod", podNS.Path(), nil)
}

// routesAndAddrs is every route of every table and every address of the
// namespace at path, one string each.
func routesAndAddrs(t *testing.T, path string) map[string]bool {
	t.Helper()
	set := map[string]bool{}
	err := ns.WithNetNSPath(path, func(ns.NetNS) error {
		routes, err := netlink.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: 0}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return err
		}
		for _, r := range routes {
			set["route "+r.String()] = true
		}
		addrs, err := netlink.AddrList(nil, netlink.FAMILY_ALL)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			set["address "+a.IPNet.String()] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return set
}
