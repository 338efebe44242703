package main

import (
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedAddRefusesVethTwin: upstream's names give interface 1 of
// multi-NIC pod default/x and interface 0 of pod default/x.1 the same host
// veth, and the names are kept. Whichever pod comes second, its ADD must
// leave the first pod's live veth, routes and rules as they were (an ADD
// that took the name as a stale veth of its own pod would cut the first
// pod off), fail with an error naming both pods, and give its addresses
// back with nothing of it left on the node.
func TestPrivilegedAddRefusesVethTwin(t *testing.T) {
	testutil.Privileged(t)
	multiNIC := map[string]any{"runtimeConfig": map[string]any{
		"io.kubernetes.cri.pod-annotations": map[string]string{"k8s.amazonaws.com/nicConfig": "multi-nic-attachment"},
	}}
	x := call{command: "ADD", containerID: "ctr-x", ifName: "eth0", podName: "x", podNS: "default", conf: netconf("1.1.0", nil, multiNIC)}
	x1 := call{command: "ADD", containerID: "ctr-x1", ifName: "eth0", podName: "x.1", podNS: "default", conf: netconf("1.1.0", nil, nil)}
	twin := vethname.HostVethName("eni", "default", "x", 1)
	if twin != vethname.HostVethName("eni", "default", "x.1", 0) {
		t.Fatal("the test's pods do not share a host veth name")
	}
	for _, tc := range []struct {
		name          string
		first, second call
		want          string
	}{
		{"single-NIC pod second", x, x1, "pod default/x.1 interface 0 and pod default/x interface 1"},
		{"multi-NIC pod second", x1, x, "pod default/x interface 1 and pod default/x.1 interface 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newNode(t, "192.168.0.10")
			ipamd := startFakeIpamd(t,
				allocation{ip: "10.0.0.11", routeTable: 254}, allocation{ip: "10.9.0.11", routeTable: 10100},
				allocation{ip: "10.0.0.12", routeTable: 254}, allocation{ip: "10.9.0.12", routeTable: 10100})
			first, second := tc.first, tc.second
			firstNS, secondNS := testutil.NewNS(t), testutil.NewNS(t)
			first.netns, first.ipamd = firstNS.Path(), ipamd.socket
			second.netns, second.ipamd = secondNS.Path(), ipamd.socket
			n.run(t, first).mustSucceed(t, "ADD of the first pod")
			nodeBefore, podBefore := snapshot(t, n.ns.Path()), snapshot(t, firstNS.Path())
			index := nodeLink(t, n, twin).Index

			out := n.run(t, second)

			if got := nodeLink(t, n, twin).Index; got != index {
				t.Errorf("host veth %s is link %d, was the first pod's link %d", twin, got, index)
			}
			if d := podnettest.Diff(nodeBefore, snapshot(t, n.ns.Path())); d != "" {
				t.Errorf("node state changed by the refused ADD (-before +after):\n%s", d)
			}
			if d := podnettest.Diff(podBefore, snapshot(t, firstNS.Path())); d != "" {
				t.Errorf("first pod's state changed by the refused ADD (-before +after):\n%s", d)
			}
			wantState(t, "second pod", secondNS.Path(), nil)
			if out.err != nil && ipamd.holds(second.containerID) {
				t.Error("ipamd still holds the refused pod's addresses")
			}
			out.wantCode(t, "ADD of the second pod", ErrWiring, tc.want)
		})
	}
}
