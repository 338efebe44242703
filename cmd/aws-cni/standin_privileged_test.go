package main

import (
	"net"
	"slices"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// addTrunk gives the node a trunk ENI eth1 (cabled to a namespace of its
// own) and returns its ifindex.
func addTrunk(t *testing.T, n node) int {
	t.Helper()
	far := testutil.NewNS(t)
	var idx int
	err := n.ns.Do(func(ns.NetNS) error {
		if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth1"}, PeerName: "trunk", PeerNamespace: netlink.NsFd(int(far.Fd()))}); err != nil {
			return err
		}
		l, err := netlink.LinkByName("eth1")
		if err != nil {
			return err
		}
		idx = l.Attrs().Index
		return netlink.LinkSetUp(l)
	})
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// branchStandin plugs the local VPC's stand-in for a branch ENI of vlan,
// mac and pod address addr (router 10.2.0.1/24) on a trunk of n, and
// starts an ipamd that answers with that branch.
func branchStandin(t *testing.T, n node, vlan int, mac, addr string) (podnettest.Standin, *fakeIpamd) {
	t.Helper()
	trunk := addTrunk(t, n)
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	s := podnettest.Standin{Node: n.ns, VPC: testutil.NewNS(t), VLANID: vlan, MAC: hw, RouterCIDR: "10.2.0.1/24", PodIP: net.ParseIP(addr)}
	if err := s.Plug(); err != nil {
		t.Fatal(err)
	}
	ipamd := startFakeIpamd(t)
	ipamd.branch = &branchReply{ip: addr, vlan: int32(vlan), mac: mac, gw: "10.2.0.1", parent: int32(trunk)}
	return s, ipamd
}

// TestPrivilegedBranchPodStandin runs a branch-ENI pod through the plugin
// binary on this kernel, which has no 802.1Q: the local VPC's stand-in
// carries the branch ENI. ADD adopts it and the VPC reaches the pod; DEL,
// driven by ipamd's reply and by prevResult with ipamd down, leaves
// nothing of the plugin's behind once the sandbox is gone, and the stand-in untouched.
func TestPrivilegedBranchPodStandin(t *testing.T) {
	testutil.Privileged(t)
	for _, ipamdUp := range []bool{true, false} {
		t.Run(map[bool]string{true: "DEL with ipamd", false: "DEL with ipamd down"}[ipamdUp], func(t *testing.T) {
			n := newNode(t, "192.168.0.10")
			s, ipamd := branchStandin(t, n, 7, "02:42:0a:02:00:37", "10.2.0.55")
			idx, err := s.Ifindex()
			if err != nil {
				t.Fatal(err)
			}
			podNS := testutil.NewNS(t)
			add := call{command: "ADD", containerID: "ctr-sb", netns: podNS.Path(), ifName: "eth0", podName: "sb", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
			out := n.run(t, add)
			out.mustSucceed(t, "ADD branch pod over the stand-in")
			// Strict mode names the host veth vlan…: the pair ADD made under
			// the eni… name before ipamd's answer is gone.
			early := vethname.HostVethName("eni", "default", "sb", 0)
			if err := n.ns.Do(func(ns.NetNS) error { _, err := netlink.LinkByName(early); return err }); err == nil {
				t.Errorf("the early pair %s is left on the node", early)
			}
			if err := podnettest.Connect(s.VPC.Path(), podNS.Path(), net.ParseIP("10.2.0.55")); err != nil {
				t.Errorf("VPC to pod: %v", err)
			}
			if err := podnettest.Connect(podNS.Path(), s.VPC.Path(), net.ParseIP("10.2.0.1")); err != nil {
				t.Errorf("pod to VPC: %v", err)
			}
			// With ipamd up the DEL carries no prevResult, so ipamd's reply
			// drives the teardown; with ipamd down prevResult does.
			del := add
			del.command = "DEL"
			if !ipamdUp {
				del.conf = netconf("1.0.0", out.stdout, nil)
				ipamd.stop()
			}
			n.run(t, del).mustSucceed(t, "DEL branch pod")
			n.run(t, del).mustSucceed(t, "second DEL branch pod")
			if ipamdUp && ipamd.holds("ctr-sb") {
				t.Error("ipamd still holds the branch pod")
			}
			veth := vethname.HostVethName(vethname.BranchPrefix, "default", "sb", 0)
			n.sandboxGone(t, podNS, veth)
			wantState(t, "node after DEL", n.ns.Path(), []string{"link eth1 veth up mtu 1500", "link vlan.eth.7 veth up mtu 1500"})
			if got, err := s.Ifindex(); err != nil || got != idx {
				t.Errorf("stand-in ifindex %d (%v), was %d: DEL must not delete it", got, err, idx)
			}
		})
	}
}

// TestPrivilegedBranchPodNoVLANSupport: where the kernel lacks 802.1Q and
// no stand-in exists, ADD fails naming the feature and the link, gives the
// address back and leaves nothing behind.
func TestPrivilegedBranchPodNoVLANSupport(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	trunk := addTrunk(t, n)
	ipamd := startFakeIpamd(t)
	ipamd.branch = &branchReply{ip: "10.2.0.56", vlan: 8, mac: "02:42:0a:02:00:38", gw: "10.2.0.1", parent: int32(trunk)}
	podNS := testutil.NewNS(t)
	add := call{command: "ADD", containerID: "ctr-nv", netns: podNS.Path(), ifName: "eth0", podName: "nv", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	out := n.run(t, add)
	if out.err == nil {
		t.Skip("the kernel has 802.1Q VLAN support")
	}
	out.wantCode(t, "ADD branch pod without 802.1Q", ErrWiring, "the kernel has no 802.1Q VLAN support (and no branch stand-in link vlan.eth.8 exists)")
	if got := ipamd.releases("ctr-nv"); !slices.Equal(got, []string{releaseReason}) {
		t.Errorf("ipamd saw releases %q, want [%s]", got, releaseReason)
	}
	wantState(t, "node", n.ns.Path(), []string{"link eth1 veth up mtu 1500"})
	wantState(t, "pod", podNS.Path(), nil)
}
