package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/poll"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// TestPrivilegedDelKilledMidway: the runtime kills a DEL (SIGKILL, as on
// its own timeout) after ipamd released the pod's address, at each of
// the DEL's netlink requests in turn, and retries it. ipamd then answers
// that it knows no such pod, so only the node can tell the retry what the
// killed DEL left. The retried DEL (run twice) and the sandbox's removal
// must leave the node as it was with pod C alone, whichever the kill
// point, with and without the prevResult the runtime passes, for IPv4 and
// IPv6 pods. Before, a kill between the route's removal and the rules'
// left the pod's rules (512 to the pod, 1536 from it to its ENI's table)
// for good.
func TestPrivilegedDelKilledMidway(t *testing.T) {
	testutil.Privileged(t)
	for _, f := range []struct{ family, node, a, c string }{
		{"IPv4", "192.168.0.10", "10.0.0.40", "10.0.0.41"},
		{"IPv6", "2001:db8:ff::10", "2001:db8:1::40", "2001:db8:1::41"},
	} {
		for _, withPrev := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/prevResult=%v", f.family, withPrev), func(t *testing.T) {
				n := newNode(t, f.node)
				ipamdC := startFakeIpamd(t, allocation{ip: f.c, deviceNumber: 1, routeTable: 2})
				addC := call{command: "ADD", containerID: "ctr-c", netns: testutil.NewNS(t).Path(), ifName: "eth0",
					podName: "c", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamdC.socket}
				n.run(t, addC).mustSucceed(t, "ADD c")
				withC := snapshot(t, n.ns.Path())
				for point := 1; ; point++ {
					if !n.delKilledAt(t, point, f.a, withPrev, withC) {
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

// delKilledAt wires pod a with address addr, runs its DEL killed at its point-th netlink
// request once ipamd has released the address, retries the DEL and checks
// the node is want. It reports false when the DEL ended before that
// request (every point is then covered).
func (n node) delKilledAt(t *testing.T, point int, addr string, withPrev bool, want []string) bool {
	t.Helper()
	ctr := fmt.Sprintf("ctr-a-%d", point)
	ipamd := startFakeIpamd(t, allocation{ip: addr, deviceNumber: 1, routeTable: 2})
	defer ipamd.stop()
	podNS := testutil.NewNS(t)
	del, killed := n.addThenKillDel(t, ipamd, ctr, podNS.Path(), point, withPrev)
	n.run(t, del).mustSucceed(t, "DEL retried after the kill")
	n.run(t, del).mustSucceed(t, "second retried DEL")
	n.sandboxGone(t, podNS, vethname.HostVethName("eni", "default", "a", 0))
	wantState(t, fmt.Sprintf("node after the DEL killed at request %d and retried", point), n.ns.Path(), want)
	return killed
}

// addThenKillDel ADDs pod a (container ctr, namespace podNS) through
// ipamd, then runs its DEL (with the ADD's result as prevResult when
// withPrev) and SIGKILLs it as it starts netlink request point, once ipamd
// has released the address. It returns the DEL, for the retries, and
// whether the kill landed (the DEL had fewer requests otherwise).
func (n node) addThenKillDel(t *testing.T, ipamd *fakeIpamd, ctr, podNS string, point int, withPrev bool) (call, bool) {
	t.Helper()
	add := call{command: "ADD", containerID: ctr, netns: podNS, ifName: "eth0",
		podName: "a", podNS: "default", conf: netconf("1.0.0", nil, nil), ipamd: ipamd.socket}
	out := n.run(t, add)
	out.mustSucceed(t, "ADD a")
	del := add
	del.command = "DEL"
	if withPrev {
		del.conf = netconf("1.0.0", out.stdout, nil)
	}
	killed, ok := n.runKilledAtSend(t, del, point, func() {
		err := poll.Until(context.Background(), 30*time.Second, func() error {
			if ipamd.holds(ctr) {
				return fmt.Errorf("kill point %d: ipamd did not release a's address", point)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	if !killed && !ok {
		t.Fatalf("the DEL not killed (point %d) failed", point)
	}
	t.Logf("kill point %d (killed %v): node then: %q", point, killed, snapshot(t, n.ns.Path()))
	return del, killed
}
