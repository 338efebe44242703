package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// lateDelTellingAgent adds the pod "guarded" as sandbox A, removes A's
// namespace and starts A's DEL with an agent that takes deleteSlow over
// its delete (or until an enforce for the pod comes in). It returns once
// the agent has the delete, with the ADD of a new sandbox B ready to run
// and A's DEL outcome to come.
func lateDelTellingAgent(t *testing.T, deleteSlow time.Duration) (n node, addB call, npa *fakeNPA, delDone chan outcome) {
	t.Helper()
	n = newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t, allocation{ip: "10.1.0.21", deviceNumber: 1, routeTable: 2}, allocation{ip: "10.1.0.22", deviceNumber: 1, routeTable: 2})
	ipamd.npMode = "strict"
	npa = startFakeNPA(t)
	nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
	veth := vethname.HostVethName("eni", "default", "guarded", 0)

	addA := call{command: "ADD", containerID: "sandbox-a", netns: nsA.Path(), ifName: "eth0", podName: "guarded", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket, npa: npa.socket}
	outA := n.run(t, addA)
	outA.mustSucceed(t, "ADD A")
	n.sandboxGone(t, nsA, veth)

	seen := make(chan struct{})
	npa.mu.Lock()
	npa.deleteSlow, npa.deleteSeen = deleteSlow, seen
	npa.mu.Unlock()
	delA := addA
	delA.command, delA.conf = "DEL", netconf("1.0.0", outA.stdout, nil)
	delDone = make(chan outcome, 1)
	go func() { delDone <- n.run(t, delA) }()
	select {
	case <-seen:
	case o := <-delDone:
		t.Fatalf("DEL A ended without telling the agent: %s", o.stdout)
	case <-time.After(30 * time.Second):
		t.Fatal("DEL A never told the agent")
	}

	addB = addA
	addB.containerID, addB.netns = "sandbox-b", nsB.Path()
	return n, addB, npa, delDone
}

// TestPrivilegedLateDelRacingAddKeepsPolicies: with network policies on,
// the DEL of a pod's old sandbox A runs while the ADD of its new sandbox
// B wires, and the agent is slow to carry out A's delete (it does so once
// an enforce for the pod comes in, or after a second). The agent keys
// policies by pod name, so B's enforce must be carried out after A's
// delete, not before: else the pod runs with no policies. B's ADD waits
// for the pod lock at most 2 s, longer than the agent's second.
func TestPrivilegedLateDelRacingAddKeepsPolicies(t *testing.T) {
	testutil.Privileged(t)
	n, addB, npa, delDone := lateDelTellingAgent(t, time.Second)
	n.run(t, addB).mustSucceed(t, "ADD B")
	(<-delDone).mustSucceed(t, "DEL A")
	if !npa.enforcing("default", "guarded") {
		t.Error("the agent carried out the old sandbox's delete after the new sandbox's enforce: the running pod has no policies")
	}
}

// TestPrivilegedTwoLateDelsRacingAddKeepPolicies: the DELs of two old
// sandboxes A1 and A2 of one pod run while the agent is slow (1.5 s, or
// until an enforce for the pod comes in), then the ADD of its new sandbox
// B. A1 holds the pod lock across its agent call; A2 must not give up
// waiting for the lock (1 s before) and check for a newer sandbox, call
// the agent and have its delete carried out after B's enforce: the pod
// would run with no policies.
func TestPrivilegedTwoLateDelsRacingAddKeepPolicies(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t, allocation{ip: "10.1.0.21", deviceNumber: 1, routeTable: 2},
		allocation{ip: "10.1.0.22", deviceNumber: 1, routeTable: 2}, allocation{ip: "10.1.0.23", deviceNumber: 1, routeTable: 2})
	ipamd.npMode = "strict"
	npa := startFakeNPA(t)
	nsA1, nsA2, nsB := testutil.NewNS(t), testutil.NewNS(t), testutil.NewNS(t)
	veth := vethname.HostVethName("eni", "default", "guarded", 0)

	addA1 := call{command: "ADD", containerID: "sandbox-a1", netns: nsA1.Path(), ifName: "eth0", podName: "guarded", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket, npa: npa.socket}
	outA1 := n.run(t, addA1)
	outA1.mustSucceed(t, "ADD A1")
	n.sandboxGone(t, nsA1, veth)
	addA2 := addA1
	addA2.containerID, addA2.netns = "sandbox-a2", nsA2.Path()
	outA2 := n.run(t, addA2)
	outA2.mustSucceed(t, "ADD A2")
	n.sandboxGone(t, nsA2, veth)

	in := make(chan struct{}, 2)
	npa.mu.Lock()
	npa.deleteSlow, npa.deleteIn = 1500*time.Millisecond, in
	npa.mu.Unlock()
	arrived := func(what string, done <-chan outcome) {
		t.Helper()
		select {
		case <-in:
		case o := <-done:
			t.Fatalf("%s ended without telling the agent: %s", what, o.stdout)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s never told the agent", what)
		}
	}
	delA1, delA2 := addA1, addA2
	delA1.command, delA1.conf = "DEL", netconf("1.0.0", outA1.stdout, nil)
	delA2.command, delA2.conf = "DEL", netconf("1.0.0", outA2.stdout, nil)
	done1, done2 := make(chan outcome, 1), make(chan outcome, 1)
	go func() { done1 <- n.run(t, delA1) }()
	arrived("DEL A1", done1)
	go func() { done2 <- n.run(t, delA2) }()
	// A2 either tells the agent (it went on unlocked) or waits for A1.
	select {
	case <-in:
	case o := <-done1:
		done1 <- o
	}

	addB := addA1
	addB.containerID, addB.netns = "sandbox-b", nsB.Path()
	n.run(t, addB).mustSucceed(t, "ADD B")
	(<-done1).mustSucceed(t, "DEL A1")
	(<-done2).mustSucceed(t, "DEL A2")
	if !npa.enforcing("default", "guarded") {
		t.Error("the agent carried out an old sandbox's delete after the new sandbox's enforce: the running pod has no policies")
	}
}

// TestPrivilegedThreeLateDelsRacingAddKeepPolicies: the DELs of three old
// sandboxes of one pod run at once while the agent is slow (1.8 s per
// delete, or until an enforce for the pod comes in); the ADD of the new
// sandbox B starts once all three have told the agent. The DELs take the
// pod lock one after another for their agent calls; the last one must not
// give up waiting for it, check for a newer sandbox and call the agent
// unlocked: B's ADD, taking the lock from the middle DEL, would then have
// its enforce carried out before that last delete and the pod would run
// with no policies.
func TestPrivilegedThreeLateDelsRacingAddKeepPolicies(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	const dels = 3
	var allocs []allocation
	for i := range dels + 1 {
		allocs = append(allocs, allocation{ip: fmt.Sprintf("10.1.0.%d", 21+i), deviceNumber: 1, routeTable: 2})
	}
	ipamd := startFakeIpamd(t, allocs...)
	ipamd.npMode = "strict"
	npa := startFakeNPA(t)
	veth := vethname.HostVethName("eni", "default", "guarded", 0)

	var delCalls []call
	for i := range dels {
		nsA := testutil.NewNS(t)
		add := call{command: "ADD", containerID: fmt.Sprintf("sandbox-a%d", i), netns: nsA.Path(), ifName: "eth0", podName: "guarded", podNS: "default",
			conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket, npa: npa.socket}
		out := n.run(t, add)
		out.mustSucceed(t, "ADD "+add.containerID)
		n.sandboxGone(t, nsA, veth)
		del := add
		del.command, del.conf = "DEL", netconf("1.0.0", out.stdout, nil)
		delCalls = append(delCalls, del)
	}

	in := make(chan struct{}, dels)
	npa.mu.Lock()
	npa.deleteSlow, npa.deleteIn = 1800*time.Millisecond, in
	npa.mu.Unlock()
	done := make(chan outcome, dels)
	for _, del := range delCalls {
		go func() { done <- n.run(t, del) }()
	}
	var outs []outcome
	for told := 0; told < dels; {
		select {
		case <-in:
			told++
		case o := <-done:
			outs = append(outs, o)
			if len(outs) == dels {
				told = dels
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("only %d of %d DELs told the agent", told, dels)
		}
	}

	nsB := testutil.NewNS(t)
	addB := call{command: "ADD", containerID: "sandbox-b", netns: nsB.Path(), ifName: "eth0", podName: "guarded", podNS: "default",
		conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket, npa: npa.socket}
	n.run(t, addB).mustSucceed(t, "ADD B")
	for len(outs) < dels {
		outs = append(outs, <-done)
	}
	for _, o := range outs {
		o.mustSucceed(t, "a late DEL")
	}
	if !npa.enforcing("default", "guarded") {
		t.Error("the agent carried out an old sandbox's delete after the new sandbox's enforce: the running pod has no policies")
	}
}

// TestPrivilegedTimedOutDelKeepsNewerPolicies: a late DEL of a pod's old
// sandbox A tells the agent the pod is gone; the agent takes longer than
// the call's 2 s and carries the delete out later (once an enforce for
// the pod comes in, or after 2.5 s). The ADD of the new sandbox B,
// waiting for the pod lock A's DEL holds across the call, must not have
// its enforce carried out before that delete: the pod would run with no
// policies.
//
// It fails today: the DEL releases the lock when its call gives up, not
// when the agent has carried the delete out, and no wait of the plugin's
// can bound an agent that carries a delete out after the caller went
// away. Nor can the requests tell the agent which sandbox they are for:
// DeleteNpRequest carries only the pod's name and namespace (fields 1, 2)
// and EnforceNpRequest adds only the mode and interface count (3, 4)
// (rpc/rpc.proto, as the agent has them). A field
// of ours beyond those (a sandbox id, a generation) reaches the real
// agent as an unknown field it never reads, and the agent keeps policies
// by pod name alone, so only a stand-in that read it would pass; the
// agent has no call that reports a delete carried out, either, for an
// ADD to wait on. Skipped until the agent's protocol carries a sandbox
// or generation it checks.
func TestPrivilegedTimedOutDelKeepsNewerPolicies(t *testing.T) {
	testutil.Privileged(t)
	t.Skip("known defect, not fixable in the plugin: a delete the agent carries out after the DEL's 2 s call gave up " +
		"can follow a newer sandbox's enforce, and the agent's requests name the pod only, not the sandbox")
	n, addB, npa, delDone := lateDelTellingAgent(t, 2500*time.Millisecond)
	outB := n.run(t, addB)
	<-delDone
	// B's ADD may fail and be retried by the runtime; the pod then runs
	// once an ADD succeeds.
	for try := 0; outB.err != nil; try++ {
		if try == 3 {
			t.Fatalf("ADD B keeps failing: %s", outB.stdout)
		}
		outB = n.run(t, addB)
	}
	if !npa.enforcing("default", "guarded") {
		t.Error("the agent carried out the old sandbox's timed-out delete after the new sandbox's enforce: the running pod has no policies")
	}
}
