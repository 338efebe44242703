package main

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/hostlinks"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedHostLinksReadsTheKernel: in a namespace standing for the
// node, a pod veth with the plugin's host route is found by both views
// ipamd takes of the host: its name suffix with its sandbox mark, and the
// route a corrupt checkpoint is recovered from. Routes through other links, and non-host
// routes through the veth, are not pod routes. A second link of the pod's
// name (an earlier pod's branch veth) has its mark reported too.
func TestPrivilegedHostLinksReadsTheKernel(t *testing.T) {
	node := testutil.NewNS(t)
	peer := testutil.NewNS(t)
	vethName := vethname.HostVethName("eni", "default", "web", 0)
	var routes []ipamd.PodRoute
	var suffixes map[string][]string
	err := node.Do(func(ns.NetNS) error {
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: vethName}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(peer.Fd()))}
		if err := netlink.LinkAdd(veth); err != nil {
			return err
		}
		if err := netlink.LinkSetAlias(veth, podnet.SandboxMark("sandbox-1")); err != nil {
			return err
		}
		other := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "other0"}, PeerName: "other1"}
		if err := netlink.LinkAdd(other); err != nil {
			return err
		}
		// An earlier pod of the name's branch veth, still there.
		earlier := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: vethname.HostVethName(vethname.BranchPrefix, "default", "web", 0)}, PeerName: "earlier1"}
		if err := netlink.LinkAdd(earlier); err != nil {
			return err
		}
		if err := netlink.LinkSetAlias(earlier, podnet.SandboxMark("sandbox-0")); err != nil {
			return err
		}
		for _, l := range []netlink.Link{veth, other} {
			if err := netlink.LinkSetUp(l); err != nil {
				return err
			}
		}
		v, _ := netlink.LinkByName(vethName)
		d, _ := netlink.LinkByName("other0")
		for _, r := range []netlink.Route{
			{LinkIndex: v.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(10, 0, 3, 7), Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK},
			{LinkIndex: v.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(10, 9, 0, 0), Mask: net.CIDRMask(16, 32)}, Scope: netlink.SCOPE_LINK},
			{LinkIndex: d.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4(10, 0, 3, 8), Mask: net.CIDRMask(32, 32)}, Scope: netlink.SCOPE_LINK},
		} {
			if err := netlink.RouteAdd(&r); err != nil {
				return err
			}
		}
		h := hostlinks.Links{VethPrefix: "eni"}
		var err error
		if suffixes, err = h.LinkSuffixes(context.Background()); err != nil {
			return err
		}
		routes, err = h.PodRoutes(context.Background())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	marks := suffixes[vethname.Suffix("default", "web")]
	slices.Sort(marks)
	if want := []string{podnet.SandboxMark("sandbox-0"), podnet.SandboxMark("sandbox-1")}; !slices.Equal(marks, want) {
		t.Errorf("link suffixes %v: the pod's name has marks %q, want both links' %q", suffixes, marks, want)
	}
	want := ipamd.PodRoute{Addr: netip.MustParseAddr("10.0.3.7"), Link: vethName}
	if len(routes) != 1 || routes[0] != want {
		t.Errorf("pod routes %v, want only %v", routes, want)
	}
}
