package main

import (
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedDelRetryTellsAgentAfterFailure: the agent is down when
// the pod's DEL tells it the pod is gone, so that DEL fails after ipamd
// released the pod; the runtime's retry must still get the agent told,
// or the pod's policies stay enforced in the agent for ever.
func TestPrivilegedDelRetryTellsAgentAfterFailure(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t, allocation{ip: "10.0.0.31", routeTable: 254})
	ipamd.npMode = "strict"
	npa := startFakeNPA(t)
	podNS := testutil.NewNS(t)
	add := call{command: "ADD", containerID: "ctr-fail", netns: podNS.Path(), ifName: "eth0", podName: "fail", podNS: "prod", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket, npa: npa.socket}
	out := n.run(t, add)
	out.mustSucceed(t, "ADD")
	if !npa.enforcing("prod", "fail") {
		t.Fatal("the agent does not enforce the pod's policies after ADD")
	}
	later := newFakeNPA(t)
	later.socket = npa.socket
	npa.stop()
	del := add
	del.command, del.conf = "DEL", netconf("1.0.0", out.stdout, nil)
	if n.run(t, del).err == nil {
		t.Fatal("DEL succeeded with the agent down")
	}
	later.start(t)
	for try := 0; n.run(t, del).err != nil; try++ {
		if try == 3 {
			t.Fatal("DEL keeps failing")
		}
	}
	later.mu.Lock()
	told := len(later.deleted)
	later.mu.Unlock()
	if told != 1 {
		t.Errorf("the agent was told the pod is gone %d times after it came back, want 1", told)
	}
}
