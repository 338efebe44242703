package ipamd

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/hostlinks"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// nsLinks reads pod links and the host routes to pods from the kernel in
// node (a namespace standing for the node) with the reader cmd/ipamd
// reads ipamd's own with.
type nsLinks struct {
	node   ns.NetNS
	prefix string
}

func (l nsLinks) LinkSuffixes(ctx context.Context) (suffixes map[string][]string, err error) {
	err = l.node.Do(func(ns.NetNS) error {
		suffixes, err = hostlinks.Links{VethPrefix: l.prefix}.LinkSuffixes(ctx)
		return err
	})
	return suffixes, err
}

func (l nsLinks) PodRoutes(ctx context.Context) (routes []PodRoute, err error) {
	err = l.node.Do(func(ns.NetNS) error {
		routes, err = hostlinks.Links{VethPrefix: l.prefix}.PodRoutes(ctx)
		return err
	})
	return routes, err
}

// TestPrivilegedOrphanSweepKeepsTheRoutedSandbox: the host side of a
// running pod made by upstream's plugin, in the kernel: its unmarked host
// veth and the /32 route to its address through it. A newer sandbox of
// the pod whose ADD failed before it touched the veth (its DEL lost) holds
// another address. The sweep reads the veth and the route from the
// kernel: the running pod keeps its address, the failed sandbox's is
// released after the grace period. Before, the failed sandbox, assigned
// last, was taken to own the veth and the running pod's address was
// released.
func TestPrivilegedOrphanSweepKeepsTheRoutedSandbox(t *testing.T) {
	testutil.Privileged(t)
	node, pod := testutil.NewNS(t), testutil.NewNS(t)
	times := fastTimes
	times.OrphanGrace = time.Minute
	h := newHarness(t, harnessOpts{podLinks: nsLinks{node: node, prefix: "eni"}, times: &times})
	running, failed, addr := failedNewerSandbox(t, h)
	veth := vethname.HostVethName("eni", "default", "web-0", 0)
	err := node.Do(func(ns.NetNS) error {
		v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: veth}, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(pod.Fd()))}
		if err := netlink.LinkAdd(v); err != nil {
			return err
		}
		l, err := netlink.LinkByName(veth)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Scope: netlink.SCOPE_LINK,
			Dst: &net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(32, 32)}})
	})
	if err != nil {
		t.Fatal(err)
	}
	sweepPastGrace(t, h)
	if !h.holds(running) {
		t.Errorf("the running sandbox %s, whose address %s the kernel routes through %s, lost it", running.ContainerID, addr, veth)
	}
	if h.holds(failed) {
		t.Errorf("the failed newer sandbox %s still holds an address after the grace period", failed.ContainerID)
	}
	h.checkConsistent()
}
