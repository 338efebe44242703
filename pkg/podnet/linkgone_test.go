package podnet

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedDELWhileTheKernelRemovesTheVeth: a DEL without
// prevResult lists the routes to the pod's address, and the kernel then
// removes the host veth (the runtime deleted the pod's namespace) before
// the DEL looks the route's link up. The DEL succeeds and leaves the
// node without the pod's rules; before, it failed with "link N of the
// route to …: Link not found" (seen in CI as TestPrivilegedDelWithNetNSGone).
func TestPrivilegedDELWhileTheKernelRemovesTheVeth(t *testing.T) {
	testutil.Privileged(t)
	ctx := context.Background()
	n := newNode(t, "192.168.0.10")
	a := Pod{NetNS: testutil.NewNS(t).Path(), MTU: 1500, Sandbox: "sandbox-a",
		LockFile:   filepath.Join(t.TempDir(), "aws-cni.lock"),
		Interfaces: []Interface{iface("default", "a", "10.1.0.7", 0, 3)}}
	n.do(t, func() error { return Setup(ctx, a) })
	testHookRoutesListed = func() {
		testHookRoutesListed = nil
		if l, err := netlink.LinkByName(a.Interfaces[0].HostVeth); err == nil {
			if err := netlink.LinkDel(l); err != nil {
				t.Errorf("delete host veth: %v", err)
			}
		}
	}
	t.Cleanup(func() { testHookRoutesListed = nil })
	n.do(t, func() error {
		_, err := StartTeardown(ctx, Pod{}).Finish(ctx, a)
		return err
	})
	wantState(t, "node after the DEL", n.ns, nil)
}
