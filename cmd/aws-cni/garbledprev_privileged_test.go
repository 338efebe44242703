package main

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedDelGarbledPrevResult: a runtime passes DEL a prevResult
// with a null interface or IP, an IP without an address, a dummy
// interface whose Mac is no VLAN id, or one that is no JSON object. DEL must neither crash nor fail (the
// runtime would retry it forever, the pod's address held), must release
// the pod's address through ipamd when ipamd answers, and must leave the
// other IPv6 pod B on the node (its route and rules) as it was. CHECK
// with such a prevResult fails with a CNI error, never a crash.
func TestPrivilegedDelGarbledPrevResult(t *testing.T) {
	testutil.Privileged(t)
	for _, c := range []struct {
		name      string
		prev      string // %[1]s host veth, %[2]s netns, %[3]s dummy name
		ipamdDown bool
	}{
		{"null interface", `{"cniVersion":"1.0.0","interfaces":[null,{"name":"eth0","sandbox":%[2]q,"mac":"2"},{"name":%[3]q,"mac":"0","sandbox":"1"}],"ips":[{"interface":1,"address":"2001:db8:1::e/128"}]}`, false},
		{"null IP", `{"cniVersion":"1.0.0","interfaces":[{"name":%[1]q},{"name":"eth0","sandbox":%[2]q,"mac":"2"},{"name":%[3]q,"mac":"0","sandbox":"1"}],"ips":[null]}`, false},
		{"dummy Mac not a VLAN id", `{"cniVersion":"1.0.0","interfaces":[{"name":%[1]q},{"name":"eth0","sandbox":%[2]q,"mac":"2"},{"name":%[3]q,"mac":"vlan","sandbox":"1"}],"ips":[{"interface":1,"address":"2001:db8:1::e/128"}]}`, false},
		{"a string", `"%[1]s"`, false},
		{"an array", `[%[1]q,%[2]q]`, false},
		{"IP without address, ipamd down", `{"cniVersion":"1.0.0","interfaces":[{"name":%[1]q},{"name":"eth0","sandbox":%[2]q,"mac":"2"},{"name":%[3]q,"mac":"0","sandbox":"1"}],"ips":[{"interface":1}]}`, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newNode(t, "2001:db8:ff::10")
			ipamd := startFakeIpamd(t,
				allocation{ip: "2001:db8:1::b", deviceNumber: 1, routeTable: 2},
				allocation{ip: "2001:db8:1::e", deviceNumber: 1, routeTable: 2})
			nsB, nsE := testutil.NewNS(t), testutil.NewNS(t)
			addB := call{command: "ADD", containerID: "ctr-b", netns: nsB.Path(), ifName: "eth0", podName: "b", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
			n.run(t, addB).mustSucceed(t, "ADD b")
			var ofB []string
			for _, l := range snapshot(t, n.ns.Path()) {
				if strings.Contains(l, "2001:db8:1::b/") {
					ofB = append(ofB, l)
				}
			}
			if len(ofB) < 3 {
				t.Fatalf("pod b lacks its route and rules: %q", ofB)
			}

			addE := addB
			addE.containerID, addE.netns, addE.podName = "ctr-e", nsE.Path(), "e"
			n.run(t, addE).mustSucceed(t, "ADD e")
			veth := vethname.HostVethName("eni", "default", "e", 0)
			prev := fmt.Sprintf(c.prev, veth, nsE.Path(), vethname.DummyName("default", "e"))
			n.sandboxGone(t, nsE, veth)
			if c.ipamdDown {
				ipamd.stop()
			}
			delE := addE
			delE.command, delE.conf = "DEL", withPrevResult(prev)
			n.run(t, delE).mustSucceed(t, "DEL e")
			if !c.ipamdDown && ipamd.holds("ctr-e") {
				t.Error("DEL e did not release e's address")
			}
			after := snapshot(t, n.ns.Path())
			if left := filterLines(after, "2001:db8:1::e/"); !c.ipamdDown && len(left) > 0 {
				t.Errorf("DEL e left e's route and rules: %q", left)
			}
			if d := podnettest.Diff(ofB, filterLines(after, "2001:db8:1::b/")); d != "" {
				t.Errorf("DEL e changed pod b's route and rules (-before +after):\n%s", d)
			}
			if err := podnettest.Connect(n.ns.Path(), nsB.Path(), net.ParseIP("2001:db8:1::b")); err != nil {
				t.Errorf("pod b after DEL e: %v", err)
			}

			check := addB
			check.command, check.conf = "CHECK", withPrevResult(prev)
			if out := n.run(t, check); out.err == nil {
				t.Error("CHECK with the garbled prevResult succeeded")
			} else if out.err.Code != types.ErrInvalidNetworkConfig {
				t.Errorf("CHECK with the garbled prevResult: code %d %q, want %d", out.err.Code, out.err.Error(), types.ErrInvalidNetworkConfig)
			}
		})
	}
}

// withPrevResult is the netconf with prev, whatever its JSON, as prevResult.
func withPrevResult(prev string) map[string]any {
	c := netconf("1.0.0", nil, nil)
	c["prevResult"] = json.RawMessage(prev)
	return c
}

// filterLines returns the lines of state that contain s.
func filterLines(state []string, s string) []string {
	var out []string
	for _, l := range state {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return out
}

// TestPrivilegedBranchDelUnusablePrevResult: a branch-ENI pod's DEL whose
// prevResult names its VLAN id but no address for its interface goes by
// ipamd's answer when the node cannot tell the address (the pod's
// namespace and veth are gone), which names the VLAN too: it succeeds, the branch is
// released and its route and rules are gone (before, it failed with code
// 7 and the runtime retried it forever, the branch's wiring left).
func TestPrivilegedBranchDelUnusablePrevResult(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	_, ipamd := branchStandin(t, n, 7, "02:42:0a:02:00:37", "10.2.0.55")
	podNS := testutil.NewNS(t)
	add := call{command: "ADD", containerID: "ctr-sb", netns: podNS.Path(), ifName: "eth0", podName: "sb", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	out := n.run(t, add)
	out.mustSucceed(t, "ADD branch pod")
	prev := netconf("1.0.0", out.stdout, nil)
	prev["prevResult"].(map[string]any)["ips"] = []any{}
	// With the namespace gone, no host veth tells the address: ipamd must.
	n.sandboxGone(t, podNS, vethname.HostVethName(vethname.BranchPrefix, "default", "sb", 0))
	del := add
	del.command, del.conf = "DEL", prev
	n.run(t, del).mustSucceed(t, "DEL with a prevResult without the address")
	if ipamd.holds("ctr-sb") {
		t.Error("ipamd still holds the branch pod")
	}
	wantState(t, "node after DEL", n.ns.Path(), []string{"link eth1 veth up mtu 1500", "link vlan.eth.7 veth up mtu 1500"})
}

// TestPrivilegedBranchDelUnusablePrevResultIpamdSilent: a branch-ENI
// pod's DEL whose prevResult names its VLAN id but no usable address,
// while ipamd cannot name the branch (it is down, or the pod is gone from
// the API server and ipamd answers with no address). The DEL succeeds, so
// it must still remove the branch's wiring: the pod's veth, still there
// and marked as the DEL's sandbox, routes the address. Before, the DEL
// succeeded and left the branch's table routes and rules for good.
func TestPrivilegedBranchDelUnusablePrevResultIpamdSilent(t *testing.T) {
	testutil.Privileged(t)
	for _, c := range []struct {
		name string
		mode string
		ips  []any
	}{
		{"strict, no IP", "strict", []any{}},
		{"strict, IP without address", "strict", []any{map[string]any{"interface": 1}}},
		{"standard, no IP", "standard", []any{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newNode(t, "192.168.0.10")
			_, ipamd := branchStandin(t, n, 7, "02:42:0a:02:00:37", "10.2.0.55")
			podNS := testutil.NewNS(t)
			conf := func(prev []byte) map[string]any {
				nc := netconf("1.0.0", prev, nil)
				nc["podSGEnforcingMode"] = c.mode
				return nc
			}
			add := call{command: "ADD", containerID: "ctr-sb", netns: podNS.Path(), ifName: "eth0", podName: "sb", podNS: "default", conf: conf(nil), ipamd: ipamd.socket}
			out := n.run(t, add)
			out.mustSucceed(t, "ADD branch pod")
			prev := conf(out.stdout)
			prev["prevResult"].(map[string]any)["ips"] = c.ips
			ipamd.stop()
			del := add
			del.command, del.conf = "DEL", prev
			n.run(t, del).mustSucceed(t, "DEL with a prevResult without the address, ipamd down")
			prefix := vethname.BranchPrefix
			if c.mode == "standard" {
				prefix = "eni"
			}
			n.sandboxGone(t, podNS, vethname.HostVethName(prefix, "default", "sb", 0))
			wantState(t, "node after DEL", n.ns.Path(), []string{"link eth1 veth up mtu 1500", "link vlan.eth.7 veth up mtu 1500"})
		})
	}
}

// TestPrivilegedBranchDelGarbledDummyIpamdDown: a branch-ENI pod's DEL
// whose prevResult's dummy interface names no VLAN id, with ipamd down:
// the VLAN link carrying the sandbox's mark (the plugin marks the VLAN
// links it makes; the test marks the stand-in as if the plugin had made
// it) tells the VLAN id, and the DEL removes the branch's wiring with the
// pod's namespace still there or already gone. Before, it succeeded and
// left the VLAN link, its table's routes and rules for good.
func TestPrivilegedBranchDelGarbledDummyIpamdDown(t *testing.T) {
	testutil.Privileged(t)
	for _, gone := range []bool{false, true} {
		t.Run(fmt.Sprintf("namespace gone %v", gone), func(t *testing.T) {
			n := newNode(t, "192.168.0.10")
			_, ipamd := branchStandin(t, n, 7, "02:42:0a:02:00:37", "10.2.0.55")
			podNS := testutil.NewNS(t)
			add := call{command: "ADD", containerID: "ctr-sb", netns: podNS.Path(), ifName: "eth0", podName: "sb", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
			out := n.run(t, add)
			out.mustSucceed(t, "ADD branch pod")
			err := n.ns.Do(func(ns.NetNS) error {
				l, err := netlink.LinkByName("vlan.eth.7")
				if err != nil {
					return err
				}
				return netlink.LinkSetAlias(l, podnet.SandboxMark("ctr-sb"))
			})
			if err != nil {
				t.Fatal(err)
			}
			prev := netconf("1.0.0", out.stdout, nil)
			for _, ifc := range prev["prevResult"].(map[string]any)["interfaces"].([]any) {
				if m := ifc.(map[string]any); strings.HasPrefix(m["name"].(string), "dummy") {
					m["mac"] = "vlan"
				}
			}
			ipamd.stop()
			veth := vethname.HostVethName(vethname.BranchPrefix, "default", "sb", 0)
			if gone {
				n.sandboxGone(t, podNS, veth)
			}
			del := add
			del.command, del.conf = "DEL", prev
			n.run(t, del).mustSucceed(t, "DEL with a garbled dummy interface, ipamd down")
			if !gone {
				n.sandboxGone(t, podNS, veth)
			}
			wantState(t, "node after DEL", n.ns.Path(), []string{"link eth1 veth up mtu 1500"})
		})
	}
}
