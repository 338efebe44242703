package main

import (
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedLateDelRacingAddKeepsPolicies: with network policies on,
// the DEL of a pod's old sandbox A runs while the ADD of its new sandbox
// B wires, and the agent is slow to carry out A's delete (it does so once
// an enforce for the pod comes in, or after a second). The agent keys
// policies by pod name, so B's enforce must be carried out after A's
// delete, not before: else the pod runs with no policies. B's ADD waits
// for the pod lock at most 2 s, longer than the agent's second.
func TestPrivilegedLateDelRacingAddKeepsPolicies(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t, allocation{ip: "10.1.0.21", deviceNumber: 1, routeTable: 2}, allocation{ip: "10.1.0.22", deviceNumber: 1, routeTable: 2})
	ipamd.npMode = "strict"
	npa := startFakeNPA(t)
	nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
	veth := vethname.HostVethName("eni", "default", "guarded", 0)

	addA := call{command: "ADD", containerID: "sandbox-a", netns: nsA.Path(), ifName: "eth0", podName: "guarded", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket, npa: npa.socket}
	outA := n.run(t, addA)
	outA.mustSucceed(t, "ADD A")
	n.sandboxGone(t, nsA, veth)

	seen := make(chan struct{})
	npa.mu.Lock()
	npa.deleteSlow, npa.deleteSeen = time.Second, seen
	npa.mu.Unlock()
	delA := addA
	delA.command, delA.conf = "DEL", netconf("1.0.0", outA.stdout, nil)
	delDone := make(chan outcome, 1)
	go func() { delDone <- n.run(t, delA) }()
	select {
	case <-seen:
	case o := <-delDone:
		t.Fatalf("DEL A ended without telling the agent: %s", o.stdout)
	case <-time.After(30 * time.Second):
		t.Fatal("DEL A never told the agent")
	}

	addB := addA
	addB.containerID, addB.netns = "sandbox-b", nsB.Path()
	n.run(t, addB).mustSucceed(t, "ADD B")
	(<-delDone).mustSucceed(t, "DEL A")
	if !npa.enforcing("default", "guarded") {
		t.Error("the agent carried out the old sandbox's delete after the new sandbox's enforce: the running pod has no policies")
	}
}
