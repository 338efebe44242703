package main

import (
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedDelPastItsDeadlineStillTearsDown: the pod's netns is gone
// before DEL (so its route went with the veth and its rules wait for
// ipamd's answer), and ipamd releases the address but answers only after
// the DEL's deadline (a slow checkpoint sync). DEL, reported done, still
// removes the pod's rules from prevResult: left behind, a from-pod rule to
// the old ENI's table would misroute the next pod given the address on
// another ENI. Runs for the plugin's DEL deadline (10 s).
func TestPrivilegedDelPastItsDeadlineStillTearsDown(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t, allocation{ip: "10.1.0.12", deviceNumber: 1, routeTable: 2})
	podNS := testutil.NewNS(t)
	add := call{command: "ADD", containerID: "ctr-slow", netns: podNS.Path(), ifName: "eth0", podName: "slow", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	out := n.run(t, add)
	out.mustSucceed(t, "ADD")
	n.sandboxGone(t, podNS, vethname.HostVethName("eni", "default", "slow", 0))
	late := make(chan struct{})
	ipamd.mu.Lock()
	ipamd.delLate = late
	ipamd.mu.Unlock()
	defer close(late)
	del := add
	del.command, del.conf, del.netns = "DEL", netconf("1.0.0", out.stdout, nil), ""
	n.run(t, del).mustSucceed(t, "DEL answered past its deadline")
	wantState(t, "node after DEL", n.ns.Path(), nil)
}
