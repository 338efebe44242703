package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// start executes the plugin inside the node's namespace without waiting
// for it.
func (n node) start(t *testing.T, c call) *exec.Cmd {
	t.Helper()
	stdin, err := json.Marshal(c.conf)
	if err != nil {
		t.Fatal(err)
	}
	cmd := c.cmd(stdin)
	if err := n.ns.Do(func(ns.NetNS) error { return cmd.Start() }); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestPrivilegedAddKilledMidway: the runtime kills the plugin (SIGKILL,
// as on its own timeout) after ipamd assigned the pod's addresses: before
// the plugin has the answer, or at points through the wiring. The ADD
// printed no result, so the runtime's DEL carries no prevResult. That DEL
// (run twice) and the sandbox's removal must leave the node as it was and
// ipamd holding nothing, whichever the kill point, for IPv4 and IPv6 pods.
// The kill points after the answer are spread over the time a whole ADD
// takes; each must end clean, so which step a point hits does not matter
// (the log shows what each left before the DEL).
func TestPrivilegedAddKilledMidway(t *testing.T) {
	testutil.Privileged(t)
	for _, c := range []struct {
		family, node, pod string
		points            time.Duration
	}{
		{"IPv4", "192.168.0.10", "10.0.0.40", 16},
		// An IPv6 ADD waits out DAD for seconds: fewer points.
		{"IPv6", "2001:db8:ff::10", "2001:db8:1::40", 4},
	} {
		t.Run(c.family, func(t *testing.T) {
			n := newNode(t, c.node)
			// -1: killed before ipamd answers; then points spread over
			// the time a whole ADD takes from ipamd's answer.
			delays := []time.Duration{-1}
			whole := n.addKilledAt(t, c.pod, "ctr-whole", -1, false)
			for k := time.Duration(0); k <= c.points; k++ {
				delays = append(delays, whole*k/c.points)
			}
			for i, delay := range delays {
				n.addKilledAt(t, c.pod, fmt.Sprintf("ctr-kill-%d", i), delay, true)
			}
		})
	}
}

// addKilledAt runs an ADD of a pod given address addr, kills it delay after
// ipamd answered (before the answer when delay < 0; not at all, unless
// kill) and returns the time from the answer to the plugin's exit. Then it
// deletes the pod as the runtime does after a failed ADD: a DEL without
// prevResult, twice, and the sandbox's removal, and checks that the node
// is as it was and ipamd holds nothing.
func (n node) addKilledAt(t *testing.T, addr, containerID string, delay time.Duration, kill bool) time.Duration {
	t.Helper()
	ipamd := startFakeIpamd(t, allocation{ip: addr, deviceNumber: 1, routeTable: 2})
	defer ipamd.stop()
	podNS := testutil.NewNS(t)
	add := call{command: "ADD", containerID: containerID, netns: podNS.Path(), ifName: "eth0",
		podName: "kill", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	assigned, answer := make(chan struct{}), make(chan struct{})
	ipamd.assigned = func() {
		close(assigned)
		if kill && delay < 0 {
			<-answer
		}
	}
	p := n.start(t, add)
	select {
	case <-assigned:
	case <-time.After(30 * time.Second):
		t.Fatal("the plugin did not ask ipamd")
	}
	answered := time.Now()
	if kill {
		if delay > 0 {
			time.Sleep(delay) // the kill point, not a wait for a condition
		}
		_ = p.Process.Kill()
	}
	_ = p.Wait()
	took := time.Since(answered)
	close(answer)
	t.Logf("kill point %v: %s; node then: %q", delay, p.ProcessState, snapshot(t, n.ns.Path()))

	del := add
	del.command = "DEL"
	n.run(t, del).mustSucceed(t, "DEL after the killed ADD")
	n.run(t, del).mustSucceed(t, "second DEL after the killed ADD")
	n.sandboxGone(t, podNS, vethname.HostVethName("eni", "default", "kill", 0))
	wantState(t, fmt.Sprintf("node after the ADD killed at %v and DEL", delay), n.ns.Path(), nil)
	if ipamd.holds(containerID) {
		t.Errorf("ipamd holds the pod's address after the ADD killed at %v and DEL", delay)
	}
	return took
}

// TestPrivilegedBranchDelWithoutResult: a branch-ENI pod's ADD wired the
// branch (host veth, VLAN link marked as its sandbox's, table and rules)
// and was killed before it printed its result, so the runtime's DEL has no
// prevResult. When ipamd cannot name the branch either (ipamd down, or the
// pod already gone from the API server, when ipamd answers success with no
// address), the VLAN link's mark must still lead the DEL to the branch:
// the node keeps only the trunk and the stand-in link. Before, the DEL
// succeeded and left the branch's table and rules for good.
func TestPrivilegedBranchDelWithoutResult(t *testing.T) {
	testutil.Privileged(t)
	for _, c := range []struct {
		name string
		gone func(*fakeIpamd)
	}{
		{"ipamd down", (*fakeIpamd).stop},
		{"pod gone from the API server", func(f *fakeIpamd) { f.branchGone = true }},
	} {
		t.Run(c.name, func(t *testing.T) {
			n := newNode(t, "192.168.0.10")
			_, ipamd := branchStandin(t, n, 7, "02:42:0a:02:00:37", "10.2.0.55")
			podNS := testutil.NewNS(t)
			add := call{command: "ADD", containerID: "ctr-sb", netns: podNS.Path(), ifName: "eth0", podName: "sb", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
			n.run(t, add).mustSucceed(t, "ADD branch pod")
			// On a kernel with 802.1Q the ADD's own VLAN link carries the
			// sandbox's mark; the stand-in keeps its alias, so mark it.
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
			c.gone(ipamd)
			del := add
			del.command = "DEL"
			n.run(t, del).mustSucceed(t, "DEL without prevResult")
			n.run(t, del).mustSucceed(t, "second DEL without prevResult")
			n.sandboxGone(t, podNS, vethname.HostVethName(vethname.BranchPrefix, "default", "sb", 0))
			wantState(t, "node after DEL", n.ns.Path(), []string{"link eth1 veth up mtu 1500"})
		})
	}
}

// TestPrivilegedDelWithoutResultIpamdDown: a regular pod's ADD wired the
// pod and was killed before it printed its result; at the runtime's DEL,
// which has no prevResult, ipamd is down. The DEL must still remove the
// pod's route and its rules (priorities 512 and 1536), which its host
// veth's mark shows are the sandbox's, and leave pod B's as they were.
// Before, it removed nothing and the rules outlived the sandbox.
func TestPrivilegedDelWithoutResultIpamdDown(t *testing.T) {
	testutil.Privileged(t)
	for _, c := range []struct{ family, node, a, b string }{
		{"IPv4", "192.168.0.10", "10.0.0.40", "10.0.0.41"},
		{"IPv6", "2001:db8:ff::10", "2001:db8:1::40", "2001:db8:1::41"},
	} {
		t.Run(c.family, func(t *testing.T) {
			n := newNode(t, c.node)
			ipamd := startFakeIpamd(t, allocation{ip: c.b, deviceNumber: 1, routeTable: 2}, allocation{ip: c.a, deviceNumber: 1, routeTable: 2})
			nsB, nsA := testutil.NewNS(t), testutil.NewNS(t)
			addB := call{command: "ADD", containerID: "ctr-b", netns: nsB.Path(), ifName: "eth0", podName: "b", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
			n.run(t, addB).mustSucceed(t, "ADD b")
			withB := snapshot(t, n.ns.Path())
			addA := addB
			addA.containerID, addA.netns, addA.podName = "ctr-a", nsA.Path(), "a"
			n.run(t, addA).mustSucceed(t, "ADD a, its result lost")
			ipamd.stop()
			del := addA
			del.command = "DEL"
			n.run(t, del).mustSucceed(t, "DEL a without prevResult, ipamd down")
			n.run(t, del).mustSucceed(t, "second DEL a")
			n.sandboxGone(t, nsA, vethname.HostVethName("eni", "default", "a", 0))
			wantState(t, "node after DEL a", n.ns.Path(), withB)
		})
	}
}
