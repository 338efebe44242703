package main

import (
	"net"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedBranchLateDELAfterStandinReused: pod a's branch ENI had
// VLAN id 7 on the local VPC's stand-in (this kernel has no 802.1Q); a's
// branch ENI is deleted with the pod, its stand-in goes, VLAN id 7 goes to
// pod b's new branch ENI with a stand-in of its own, and b is wired. Only
// then does a's DEL come (late, or retried after one killed midway), from
// its prevResult. A stand-in carries no sandbox's mark, so before, a's DEL
// took b's stand-in for its own and removed b's branch table routes and
// the stand-in's iif rule: b was cut off from the VPC. a's DEL must remove
// only what names a, in both modes.
func TestPrivilegedBranchLateDELAfterStandinReused(t *testing.T) {
	testutil.Privileged(t)
	for _, mode := range []string{"strict", "standard"} {
		t.Run(mode, func(t *testing.T) {
			n := newNode(t, "192.168.0.10")
			trunk := addTrunk(t, n)
			vpc := testutil.NewNS(t)
			conf := netconf("1.0.0", nil, map[string]any{"podSGEnforcingMode": mode})
			prefix := vethname.BranchPrefix
			if mode == "standard" {
				prefix = "eni"
			}
			plug := func(mac, ip string) {
				t.Helper()
				hw, _ := net.ParseMAC(mac)
				s := podnettest.Standin{Node: n.ns, VPC: vpc, VLANID: 7, MAC: hw, RouterCIDR: "10.2.0.1/24", PodIP: net.ParseIP(ip)}
				if err := s.Plug(); err != nil {
					t.Fatal(err)
				}
			}
			ipamd := startFakeIpamd(t)

			plug("02:42:0a:02:00:37", "10.2.0.55")
			ipamd.branch = &branchReply{ip: "10.2.0.55", vlan: 7, mac: "02:42:0a:02:00:37", gw: "10.2.0.1", parent: int32(trunk)}
			nsA := testutil.NewNS(t)
			addA := call{command: "ADD", containerID: "ctr-a", netns: nsA.Path(), ifName: "eth0", podName: "a", podNS: "default", conf: conf, ipamd: ipamd.socket}
			outA := n.run(t, addA)
			outA.mustSucceed(t, "ADD a")

			// a's branch ENI is deleted: its stand-in goes (with its port).
			err := n.ns.Do(func(ns.NetNS) error {
				l, err := netlink.LinkByName("vlan.eth.7")
				if err != nil {
					return err
				}
				return netlink.LinkDel(l)
			})
			if err != nil {
				t.Fatal(err)
			}
			aVeth := vethname.HostVethName(prefix, "default", "a", 0)
			n.sandboxGone(t, nsA, aVeth)

			plug("02:42:0a:02:00:4d", "10.2.0.77")
			ipamd.branch = &branchReply{ip: "10.2.0.77", vlan: 7, mac: "02:42:0a:02:00:4d", gw: "10.2.0.1", parent: int32(trunk)}
			nsB := testutil.NewNS(t)
			addB := call{command: "ADD", containerID: "ctr-b", netns: nsB.Path(), ifName: "eth0", podName: "b", podNS: "default", conf: conf, ipamd: ipamd.socket}
			n.run(t, addB).mustSucceed(t, "ADD b on VLAN id 7")
			if err := podnettest.Connect(vpc.Path(), nsB.Path(), net.ParseIP("10.2.0.77")); err != nil {
				t.Fatalf("VPC to b before a's DEL: %v", err)
			}
			var want []string
			for _, l := range snapshot(t, n.ns.Path()) {
				if !strings.Contains(l, aVeth) && !strings.Contains(l, "10.2.0.55/") {
					want = append(want, l)
				}
			}

			delA := addA
			delA.command, delA.conf = "DEL", netconf("1.0.0", outA.stdout, map[string]any{"podSGEnforcingMode": mode})
			n.run(t, delA).mustSucceed(t, "a's late DEL")
			n.run(t, delA).mustSucceed(t, "a's DEL again")
			wantState(t, "node after a's late DEL", n.ns.Path(), want)
			if err := podnettest.Connect(vpc.Path(), nsB.Path(), net.ParseIP("10.2.0.77")); err != nil {
				t.Errorf("VPC to b after a's late DEL: %v", err)
			}
		})
	}
}
