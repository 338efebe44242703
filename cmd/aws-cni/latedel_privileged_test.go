package main

import (
	"slices"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedLateDelWithoutIpamdKeepsNewerPod: a DEL repeated after the
// pod's address went to a newer pod, at a moment ipamd is unreachable
// (restarting), leaves the newer pod's route and rules alone, though the
// old prevResult names the same address: DEL then works from prevResult
// alone, and the address is routed to another pod's veth.
func TestPrivilegedLateDelWithoutIpamdKeepsNewerPod(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	same := allocation{ip: "10.1.0.9", deviceNumber: 1, routeTable: 2}
	ipamd := startFakeIpamd(t, same, same)
	nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
	addA := call{command: "ADD", containerID: "ctr-old", netns: nsA.Path(), ifName: "eth0", podName: "old", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	outA := n.run(t, addA)
	outA.mustSucceed(t, "ADD old")
	delA := addA
	delA.command, delA.conf = "DEL", netconf("1.0.0", outA.stdout, nil)
	n.run(t, delA).mustSucceed(t, "DEL old")
	n.sandboxGone(t, nsA, vethname.HostVethName("eni", "default", "old", 0))

	addB := addA
	addB.containerID, addB.netns, addB.podName = "ctr-new", nsB.Path(), "new"
	n.run(t, addB).mustSucceed(t, "ADD new")
	before := snapshot(t, n.ns.Path())
	for _, r := range []string{"rule 512 to 10.1.0.9/32 lookup main", "rule 1536 from 10.1.0.9/32 lookup 2"} {
		if !slices.Contains(before, r) {
			t.Fatalf("the newer pod lacks %q: %q", r, before)
		}
	}
	ipamd.stop()
	n.run(t, delA).mustSucceed(t, "late DEL old, ipamd unreachable")
	if d := podnettest.Diff(before, snapshot(t, n.ns.Path())); d != "" {
		t.Errorf("the late DEL changed the node (-before +after):\n%s", d)
	}
}
