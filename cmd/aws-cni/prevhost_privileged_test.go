package main

import (
	"fmt"
	"net"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedDelKeepsRoutesOfNodeLinks: a prevResult that names one of
// the node's own links (eth0) as the pod's host veth, with an address the
// node routes through that link (the instance metadata service's, as on
// EC2 images), removes nothing of the node's, whether ipamd answers or
// not: a route through a link that is not a veth is never a pod's.
func TestPrivilegedDelKeepsRoutesOfNodeLinks(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	addNodeENI(t, n)
	err := n.ns.Do(func(ns.NetNS) error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			return err
		}
		return netlink.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: singleHost(net.ParseIP("169.254.169.254")), Scope: netlink.SCOPE_LINK})
	})
	if err != nil {
		t.Fatal(err)
	}
	before := fullState(t, n.ns.Path())
	ipamd := startFakeIpamd(t)
	podNS := testutil.NewNS(t)
	prev := fmt.Appendf(nil, `{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"},{"name":"eth0","sandbox":%q,"mac":"254"},{"name":%q,"mac":"0","sandbox":"0"}],"ips":[{"interface":1,"address":"169.254.169.254/32"}]}`,
		podNS.Path(), vethname.DummyName("default", "imds"))
	del := call{command: "DEL", containerID: "ctr-imds", netns: podNS.Path(), ifName: "eth0", podName: "imds", podNS: "default",
		conf: netconf("1.0.0", prev, nil), ipamd: ipamd.socket}
	n.run(t, del).mustSucceed(t, "DEL naming eth0 as the host veth")
	if d := podnettest.Diff(before, fullState(t, n.ns.Path())); d != "" {
		t.Errorf("DEL with ipamd changed the node (-before +after):\n%s", d)
	}
	ipamd.stop()
	n.run(t, del).mustSucceed(t, "DEL naming eth0 as the host veth, ipamd down")
	if d := podnettest.Diff(before, fullState(t, n.ns.Path())); d != "" {
		t.Errorf("DEL with ipamd down changed the node (-before +after):\n%s", d)
	}
}
