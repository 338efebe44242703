package main

import (
	"net"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedDelTellsSlowAgent: ipamd answers a DEL with network
// policies on when only 0.3 s of the DEL's time is left, and the network
// policy agent (restarting: its socket is back, nothing answers on it)
// serves only once the DEL's own deadline has passed, well within the
// agent call's own 2 s. That DEL must succeed, having told the agent the
// pod is gone. (A DEL that failed would leave the duty to the runtime's
// retry through the pending marker, see npapending.go; the test used to
// accept such a retry and so passed with the agent call cut at the DEL's
// deadline.)
//
// The agent holds the plugin's connection rather than having no socket,
// so the plugin's call waits for it without redialling: the test depends
// on no redial timing, only on the agent serving within the call's 2 s.
func TestPrivilegedDelTellsSlowAgent(t *testing.T) {
	testutil.Privileged(t)
	n, ipamd, del, later := podWithPolicies(t, "slow")
	ipamd.mu.Lock()
	ipamd.delLeft, ipamd.delDone = 300*time.Millisecond, make(chan struct{})
	ipamd.mu.Unlock()
	ln, err := net.Listen("unix", later.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	served := make(chan struct{})
	t.Cleanup(func() { <-served })
	go func() {
		defer close(served)
		<-ipamd.delDone
		ipamd.mu.Lock()
		deadline := ipamd.delDeadline
		ipamd.mu.Unlock()
		// Serve once the DEL's own time is over, so only the agent
		// call's own deadline can reach the agent.
		<-time.After(time.Until(deadline) + 10*time.Millisecond)
		later.serveOn(ln)
	}()
	t.Cleanup(later.stop)
	n.run(t, del).mustSucceed(t, "DEL answered at its deadline")
	later.mu.Lock()
	defer later.mu.Unlock()
	if len(later.deleted) == 0 {
		t.Error("the DEL did not tell the agent the pod is gone")
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
