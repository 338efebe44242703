package podnet

import (
	"context"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedHostTeardown: the step before ipamd's answer removes the
// route and rules of an address still routed through the pod's own host
// veth, and leaves the rules of an address whose route is gone to Finish.
func TestPrivilegedHostTeardown(t *testing.T) {
	ctx := context.Background()
	n := newNode(t, "192.168.0.10")
	pod := Pod{NetNS: testutil.NewNS(t).Path(), MTU: 1500, Interfaces: []Interface{iface("default", "b", "10.1.0.6", 0, 3)}}
	veth := pod.Interfaces[0].HostVeth
	rules := []string{"rule 512 to 10.1.0.6/32 lookup main", "rule 1536 from 10.1.0.6/32 lookup 3"}

	n.do(t, func() error { return Setup(ctx, pod) })
	n.do(t, func() error {
		td := StartTeardown(ctx, pod)
		wantState(t, "node before the answer", n.ns, []string{"link " + veth + " veth up mtu 1500"})
		_, err := td.Finish(ctx, pod)
		return err
	})
	wantState(t, "node after Finish", n.ns, []string{"link " + veth + " veth up mtu 1500"})

	// The host veth went (with its route) before DEL: the rules stay until
	// the answer confirms the address, and Close leaves them.
	n.do(t, func() error { return Setup(ctx, pod) })
	n.vethGone(t, veth)
	n.do(t, func() error { return StartTeardown(ctx, pod).Close() })
	wantState(t, "node after a teardown closed early", n.ns, rules)
	n.do(t, func() error {
		td := StartTeardown(ctx, pod)
		wantState(t, "node before the answer", n.ns, rules)
		_, err := td.Finish(ctx, pod)
		return err
	})
	wantState(t, "node after Finish", n.ns, nil)
}
