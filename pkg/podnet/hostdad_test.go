package podnet

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedIPv6PodReachableFromNodeAtOnce: the node reaches an IPv6
// pod the moment Setup returns. The node's DAD is made slower than the
// pod's (3 probes against 1), so a host veth running DAD would still have
// a tentative link-local address then, and the node could not resolve the
// pod's address through it.
func TestPrivilegedIPv6PodReachableFromNodeAtOnce(t *testing.T) {
	testutil.Privileged(t)
	ctx := context.Background()
	n := newNode(t, "2001:db8:ff::10")
	n.do(t, func() error {
		return os.WriteFile("/proc/sys/net/ipv6/conf/default/dad_transmits", []byte("3"), 0o644)
	})
	podNS := testutil.NewNS(t)
	pod := Pod{NetNS: podNS.Path(), MTU: 9001, Interfaces: []Interface{iface("default", "dad6", "2001:db8::7", 0, 0)}}
	veth := pod.Interfaces[0].HostVeth
	n.do(t, func() error { return Setup(ctx, pod) })
	defer n.do(t, func() error { return undo(ctx, pod) })

	var linkLocal []string
	n.do(t, func() error {
		l, err := netlink.LinkByName(veth)
		if err != nil {
			return err
		}
		addrs, err := netlink.AddrList(l, netlink.FAMILY_V6)
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if !a.IP.IsLinkLocalUnicast() {
				continue
			}
			state := "usable"
			if a.Flags&unix.IFA_F_TENTATIVE != 0 {
				state = "tentative"
			}
			linkLocal = append(linkLocal, a.IP.String()+" "+state)
		}
		return nil
	})
	if len(linkLocal) != 1 || !strings.HasSuffix(linkLocal[0], " usable") {
		t.Fatalf("host veth %s link-local addresses right after Setup: %q, want one usable", veth, linkLocal)
	}
	if err := podnettest.Connect(n.ns.Path(), podNS.Path(), net.ParseIP("2001:db8::7")); err != nil {
		t.Errorf("node to pod right after Setup: %v", err)
	}
}
