package main

import (
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedDelTellsSlowAgent: ipamd answers a DEL with network
// policies on when only 0.3 s of the DEL's time is left, and the network
// policy agent (restarting) serves again 0.5 s later, before the plugin's
// first redial (0.8 s or more) and well within the agent call's own 2 s.
// The agent must be told the pod is gone, by that DEL or by the runtime's
// retries: once ipamd has answered, a retried DEL finds the pod unknown
// and never tells the agent.
func TestPrivilegedDelTellsSlowAgent(t *testing.T) {
	testutil.Privileged(t)
	n, ipamd, del, later := podWithPolicies(t, "slow")
	ipamd.mu.Lock()
	ipamd.delLeft, ipamd.delDone = 300*time.Millisecond, make(chan struct{})
	ipamd.mu.Unlock()
	served := make(chan struct{})
	t.Cleanup(func() { <-served })
	go func() {
		defer close(served)
		<-ipamd.delDone
		// The agent's downtime is the scenario itself, not a wait for a
		// condition: it must outlast the 0.3 s the DEL had left, so only
		// the agent call's own deadline can reach the agent.
		time.Sleep(500 * time.Millisecond)
		if err := later.serve(); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(later.stop)
	for try := 0; ; try++ {
		if n.run(t, del).err == nil {
			break
		}
		if try == 3 {
			t.Fatal("DEL keeps failing")
		}
	}
	later.mu.Lock()
	defer later.mu.Unlock()
	if len(later.deleted) == 0 {
		t.Error("the agent was never told the pod is gone (its policies stay)")
	}
}

// podWithPolicies adds pod prod/name with network policies on (strict)
// and checks the agent enforces them; then the agent goes down, and later
// is the agent that will serve its socket again when the test says. del
// is the pod's DEL.
func podWithPolicies(t *testing.T, name string) (n node, ipamd *fakeIpamd, del call, later *fakeNPA) {
	t.Helper()
	n = newNode(t, "192.168.0.10")
	ipamd = startFakeIpamd(t, allocation{ip: "10.0.0.31", routeTable: 254})
	ipamd.npMode = "strict"
	npa := startFakeNPA(t)
	podNS := testutil.NewNS(t)
	add := call{command: "ADD", containerID: "ctr-" + name, netns: podNS.Path(), ifName: "eth0", podName: name, podNS: "prod", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket, npa: npa.socket}
	out := n.run(t, add)
	out.mustSucceed(t, "ADD")
	if !npa.enforcing("prod", name) {
		t.Fatal("the agent does not enforce the pod's policies after ADD")
	}
	// The agent restarts: the same socket path, served again later.
	later = newFakeNPA(t)
	later.socket = npa.socket
	npa.stop()
	del = add
	del.command, del.conf = "DEL", netconf("1.0.0", out.stdout, nil)
	return n, ipamd, del, later
}
