package main

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedDelKilledThenAddressReused: a DEL of pod a is killed
// (SIGKILL, as on the runtime's timeout) after ipamd released its address,
// at each of its netlink requests in turn; ipamd, with no cooldown, gives
// the address to a new pod b at once, and only then does the runtime retry
// a's DEL (twice). Routes and rules name only the address, so the retries
// must tell b's from what the killed DEL left: the node must then be as
// b's ADD alone leaves it and b reachable, with and without the prevResult
// the runtime passes, whether b's address is on a's ENI or, moved in EC2,
// on another: then a from-pod rule of a's ENI left by the killed DEL
// would send b's traffic out through the wrong ENI's table.
func TestPrivilegedDelKilledThenAddressReused(t *testing.T) {
	testutil.Privileged(t)
	for _, c := range []struct {
		name string
		b    allocation
	}{
		{"b on a's ENI", allocation{ip: reuseAddr, deviceNumber: 1, routeTable: 2}},
		{"b on another ENI", allocation{ip: reuseAddr, deviceNumber: 2, routeTable: 3}},
	} {
		for _, withPrev := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/prevResult=%v", c.name, withPrev), func(t *testing.T) {
				n := newNode(t, "192.168.0.10")
				bAlone := n.reusePodAlone(t, c.b)
				for point := 1; ; point++ {
					if !n.delKilledReusedAt(t, point, reuseAddr, withPrev, c.b, bAlone) {
						if point < 3 {
							t.Fatalf("the DEL made only %d netlink requests", point-1)
						}
						return
					}
				}
			})
		}
	}
}

// reuseAddr is the address pod a has (on the ENI of device 1, table 2)
// and pod b gets once a's DEL was killed.
const reuseAddr = "10.0.0.40"

// reusePodAlone is the node as the ADD of pod b, given b, leaves it when
// nothing else is on the node; the node is empty again when it returns.
func (n node) reusePodAlone(t *testing.T, b allocation) []string {
	t.Helper()
	ipamd := startFakeIpamd(t, b)
	defer ipamd.stop()
	podNS := testutil.NewNS(t)
	add := call{command: "ADD", containerID: "ctr-b-alone", netns: podNS.Path(), ifName: "eth0",
		podName: "b", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	out := n.run(t, add)
	out.mustSucceed(t, "ADD b alone")
	alone := snapshot(t, n.ns.Path())
	del := add
	del.command, del.conf = "DEL", netconf("1.0.0", out.stdout, nil)
	n.run(t, del).mustSucceed(t, "DEL b alone")
	n.sandboxGone(t, podNS, vethname.HostVethName("eni", "default", "b", 0))
	wantState(t, "node after b alone", n.ns.Path(), nil)
	return alone
}

// delKilledReusedAt runs pod a's DEL (a has addr, on the ENI of device 1,
// table 2) killed at its point-th netlink request once ipamd released the
// address, then pod b's ADD given b (the same address), then a's DEL
// again, and checks the node is bAlone and b is reachable. It reports
// false when the DEL ended before that request.
func (n node) delKilledReusedAt(t *testing.T, point int, addr string, withPrev bool, b allocation, bAlone []string) bool {
	t.Helper()
	ctrA, ctrB := fmt.Sprintf("ctr-a-%d", point), fmt.Sprintf("ctr-b-%d", point)
	ipamd := startFakeIpamd(t, allocation{ip: addr, deviceNumber: 1, routeTable: 2}, b)
	defer ipamd.stop()
	nsA, nsB := testutil.NewNS(t), testutil.NewNS(t)
	delA, killed := n.addThenKillDel(t, ipamd, ctrA, nsA.Path(), point, withPrev)

	addB := call{command: "ADD", containerID: ctrB, netns: nsB.Path(), ifName: "eth0",
		podName: "b", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	outB := n.run(t, addB)
	outB.mustSucceed(t, "ADD b, given a's address")
	n.run(t, delA).mustSucceed(t, "a's DEL retried after b's ADD")
	n.run(t, delA).mustSucceed(t, "a's second retried DEL")
	n.sandboxGone(t, nsA, vethname.HostVethName("eni", "default", "a", 0))
	wantState(t, fmt.Sprintf("node after a's DEL killed at request %d, b's ADD and a's retried DEL", point), n.ns.Path(), bAlone)
	if ip := net.ParseIP(addr); ip.To4() == nil {
		// ADD waits for DAD on the pod's side only; until the host veth's
		// link-local address is done with it, the node sends no neighbour
		// solicitation for the pod.
		if err := podnettest.WaitIPv6Ready(context.Background(), n.ns.Path(), vethname.HostVethName("eni", "default", "b", 0)); err != nil {
			t.Fatal(err)
		}
	}
	if err := podnettest.Connect(n.ns.Path(), nsB.Path(), net.ParseIP(addr)); err != nil {
		t.Errorf("kill point %d: pod b after a's retried DEL: %v", point, err)
	}

	delB := addB
	delB.command, delB.conf = "DEL", netconf("1.0.0", outB.stdout, nil)
	n.run(t, delB).mustSucceed(t, "DEL b")
	n.sandboxGone(t, nsB, vethname.HostVethName("eni", "default", "b", 0))
	wantState(t, "node after b's DEL", n.ns.Path(), nil)
	return killed
}
