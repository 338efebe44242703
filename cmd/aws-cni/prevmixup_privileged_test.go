package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedDelWithAnotherPodsPrevResult: a runtime whose result cache
// mixed two pods up sends pod a's DEL with pod b's prevResult. The host
// veth it names is not pod a's (its name hashes pod b's namespace and
// name), so DEL uses none of it: pod a's address is released and its
// wiring removed from ipamd's answer, pod b's route and rules stay, with
// ipamd up and with ipamd down.
func TestPrivilegedDelWithAnotherPodsPrevResult(t *testing.T) {
	testutil.Privileged(t)
	for _, ipamdUp := range []bool{true, false} {
		n := newNode(t, "192.168.0.10")
		ipamd := startFakeIpamd(t, allocation{ip: "10.1.0.21", deviceNumber: 1, routeTable: 2}, allocation{ip: "10.1.0.22", deviceNumber: 1, routeTable: 2})
		nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
		addA := call{command: "ADD", containerID: "ctr-a", netns: nsA.Path(), ifName: "eth0", podName: "a", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
		n.run(t, addA).mustSucceed(t, "ADD a")
		addB := addA
		addB.containerID, addB.netns, addB.podName = "ctr-b", nsB.Path(), "b"
		outB := n.run(t, addB)
		outB.mustSucceed(t, "ADD b")
		n.sandboxGone(t, nsA, vethname.HostVethName("eni", "default", "a", 0))
		before := snapshot(t, n.ns.Path())

		delA := addA
		delA.command, delA.conf, delA.netns = "DEL", netconf("1.0.0", outB.stdout, nil), ""
		if !ipamdUp {
			ipamd.stop()
		}
		n.run(t, delA).mustSucceed(t, "DEL a with b's prevResult")
		got := snapshot(t, n.ns.Path())
		for _, line := range before {
			if (strings.Contains(line, "10.1.0.22") || strings.Contains(line, vethname.HostVethName("eni", "default", "b", 0))) && !slices.Contains(got, line) {
				t.Errorf("ipamd up %v: pod b lost %q", ipamdUp, line)
			}
		}
		if ipamdUp {
			if ipamd.holds("ctr-a") {
				t.Error("pod a's address was not released")
			}
			for _, line := range got {
				if strings.Contains(line, "10.1.0.21") {
					t.Errorf("pod a's %q is left on the node", line)
				}
			}
		}
	}
}
