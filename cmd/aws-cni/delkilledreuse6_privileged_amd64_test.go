package main

import (
	"fmt"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedDelKilledThenAddressReusedV6 is
// TestPrivilegedDelKilledThenAddressReused for IPv6 pods: a's DEL killed
// at each netlink request after ipamd released the address, b given the
// same address, a's DEL retried twice; the node must then be as b's ADD
// alone leaves it and b reachable from the node. b is in main, as ipamd
// in IPv6 mode places every pod on the primary ENI, while a (table 2)
// leaves a from-pod rule of another table: the only case whose outcome
// hangs on the IPv6 rules. The IPv4 test covers b on a's ENI and on
// another. The node has a global IPv6 address, as every IPv6 node has:
// without one the node's only source for b is the host veth's link-local
// address, and while that is tentative the kernel picks ::1, which the
// pod never answers.
func TestPrivilegedDelKilledThenAddressReusedV6(t *testing.T) {
	testutil.Privileged(t)
	b := allocation{ip: reuseAddr6}
	for _, withPrev := range []bool{true, false} {
		t.Run(fmt.Sprintf("prevResult=%v", withPrev), func(t *testing.T) {
			n := newNode(t, "2001:db8:ff::10")
			bAlone := n.reusePodAlone(t, b)
			for point := 1; ; point++ {
				if !n.delKilledReusedAt(t, point, reuseAddr6, withPrev, b, bAlone) {
					if point < 3 {
						t.Fatalf("the DEL made only %d netlink requests", point-1)
					}
					return
				}
			}
		})
	}
}

// reuseAddr6 is reuseAddr for IPv6 pods.
const reuseAddr6 = "2001:db8:0:1::40"
