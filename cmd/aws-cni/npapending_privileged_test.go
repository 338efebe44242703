package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedNPAPendingMarkerBounded: a DEL that released the pod in
// ipamd but could not tell the network policy agent leaves a marker for
// its retry. When the runtime never retries, the marker must not stay
// for ever: a successful ADD of the pod's name removes it (the agent's
// policies for the name are that sandbox's now, and the old sandbox's
// retried DEL leaves them), and any DEL removes a marker no DEL retried
// for a day, leaving a recent one.
func TestPrivilegedNPAPendingMarkerBounded(t *testing.T) {
	testutil.Privileged(t)
	n := newNode(t, "192.168.0.10")
	ipamd := startFakeIpamd(t,
		allocation{ip: "10.0.0.31", routeTable: 254},
		allocation{ip: "10.0.0.32", routeTable: 254},
		allocation{ip: "10.0.0.33", routeTable: 254})
	ipamd.npMode = "strict"
	npa := startFakeNPA(t)
	markers := func() []string {
		t.Helper()
		m, err := filepath.Glob(filepath.Join(filepath.Dir(ipamd.socket), npaPendingPrefix+"*"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	pod := func(id, name string) call {
		return call{command: "ADD", containerID: id, netns: testutil.NewNS(t).Path(), ifName: "eth0", podName: name, podNS: "prod",
			conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket, npa: npa.socket}
	}
	// failedDel adds the pod and deletes it with the agent down: the DEL
	// fails after ipamd released the pod, leaving one more marker.
	failedDel := func(c call) call {
		t.Helper()
		out := n.run(t, c)
		out.mustSucceed(t, "ADD "+c.containerID)
		before := len(markers())
		npa.stop()
		del := c
		del.command, del.conf = "DEL", netconf("1.0.0", out.stdout, nil)
		if n.run(t, del).err == nil {
			t.Fatalf("DEL %s succeeded with the agent down", c.containerID)
		}
		if got := len(markers()); got != before+1 {
			t.Fatalf("%d markers after the failed DEL of %s, want %d", got, c.containerID, before+1)
		}
		npa = startFakeNPA(t)
		return del
	}

	// The pod comes back under its name in a new sandbox before the
	// runtime retried the old sandbox's DEL.
	oldDel := failedDel(pod("ctr-web-1", "web"))
	n.run(t, pod("ctr-web-2", "web")).mustSucceed(t, "ADD of the pod's new sandbox")
	if m := markers(); len(m) != 0 {
		t.Errorf("markers %v left after the pod's name was added again", m)
	}
	oldDel.npa = npa.socket
	n.run(t, oldDel).mustSucceed(t, "retried DEL of the old sandbox")
	if !npa.enforcing("prod", "web") {
		t.Error("the old sandbox's retried DEL had the agent drop the new sandbox's policies")
	}

	// A pod deleted for good: its DEL is never retried.
	failedDel(pod("ctr-gone", "gone"))
	expired := markers()
	old := time.Now().Add(-npaPendingMaxAge - time.Minute)
	for _, m := range expired {
		if err := os.Chtimes(m, old, old); err != nil {
			t.Fatal(err)
		}
	}
	// A recent marker of another pod whose DEL the runtime still retries.
	recent := filepath.Join(filepath.Dir(ipamd.socket), npaPendingPrefix+"recent")
	if err := os.WriteFile(recent, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	other := call{command: "DEL", containerID: "ctr-unknown", netns: "", ifName: "eth0", podName: "other", podNS: "prod",
		conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket, npa: npa.socket}
	n.run(t, other).mustSucceed(t, "DEL of another pod")
	if m := markers(); len(m) != 1 || m[0] != recent {
		t.Errorf("markers after a DEL past the bound: %v, want only %s", m, recent)
	}
}
