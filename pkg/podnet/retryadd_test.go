package podnet

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedRetriedADDNewNetNS: a runtime retries ADD with the same
// container id and a new network namespace. ipamd answers a repeated ADD
// of a container id with the address it holds, so the retry wires the same
// address: it finds the host veth name taken (the early pair is not
// made), replaces the first attempt's veth, whose pod end goes with it out
// of the first namespace, and routes the address to the new one. Nothing
// of the first attempt stays on the node; the first namespace, still
// there, is left without the pod's interface; one DEL of the container id
// leaves the node clean.
func TestPrivilegedRetriedADDNewNetNS(t *testing.T) {
	ctx := context.Background()
	lockFile := filepath.Join(t.TempDir(), "aws-cni.lock")
	n := newNode(t, "192.168.0.10")
	first, second := testutil.NewNS(t), testutil.NewNS(t)
	pod := Pod{NetNS: first.Path(), MTU: 1500, Sandbox: "sandbox-x", LockFile: lockFile,
		Interfaces: []Interface{iface("default", "p", "10.1.0.6", 0, 3)}}
	n.do(t, func() error { return Setup(ctx, pod) })
	veth := pod.Interfaces[0].HostVeth

	pod.NetNS = second.Path()
	n.do(t, func() error {
		if _, err := CreateVeth(pod.NetNS, pod.Sandbox, veth, "eth0", pod.MTU); !errors.Is(err, ErrHostVethExists) {
			t.Errorf("early pair of the retry: %v, want ErrHostVethExists", err)
		}
		return Setup(ctx, pod)
	})
	wantState(t, "node after the retried ADD", n.ns, []string{
		"link " + veth + " veth up mtu 1500",
		"route main 10.1.0.6/32 dev " + veth + " scope link",
		"rule 512 to 10.1.0.6/32 lookup main",
		"rule 1536 from 10.1.0.6/32 lookup 3",
	})
	wantState(t, "first namespace", first, nil)
	if got := snapshot(t, second); len(got) == 0 {
		t.Errorf("second namespace is not wired")
	}

	n.do(t, func() error { return Teardown(ctx, pod) })
	n.vethGone(t, veth)
	wantState(t, "node after DEL", n.ns, nil)
}
