package podnet

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedDELRacesAddressReuse: pod a's DEL has checked that a's
// address is still routed through a's host veth, so its route and rules
// are a's, and is about to remove them; in that moment ipamd, with no
// cooldown (IP_COOLDOWN_PERIOD 0), has given the address to another pod
// b, whose ADD holds b's pod lock, not a's, and wires. Routes and rules
// name only the address: b must keep its route and rules whole. With
// prevResult (the early teardown checks) and with only ipamd's answer
// (Finish checks).
func TestPrivilegedDELRacesAddressReuse(t *testing.T) {
	for _, withPrev := range []bool{true, false} {
		t.Run(fmt.Sprintf("prevResult=%v", withPrev), func(t *testing.T) {
			ctx := context.Background()
			lockFile := filepath.Join(t.TempDir(), "aws-cni.lock")
			n := newNode(t, "192.168.0.10")
			a := Pod{NetNS: testutil.NewNS(t).Path(), MTU: 1500, Sandbox: "sandbox-a", LockFile: lockFile,
				Interfaces: []Interface{iface("default", "a", "10.1.0.6", 0, 3)}}
			n.do(t, func() error { return Setup(ctx, a) })
			b := Pod{NetNS: testutil.NewNS(t).Path(), MTU: 1500, Sandbox: "sandbox-b", LockFile: lockFile,
				Interfaces: []Interface{iface("default", "b", "10.1.0.6", 0, 3)}}
			var early Pod
			if withPrev {
				early = a
			}
			delErr, addErr := raceDELAt(t, n, &testHookOwnerChecked,
				func() error {
					_, err := StartTeardown(ctx, early).Finish(ctx, a)
					return err
				},
				func() error { return Setup(ctx, b) })
			if delErr != nil || addErr != nil {
				t.Fatalf("a's DEL: %v; b's ADD: %v", delErr, addErr)
			}
			vethA, vethB := a.Interfaces[0].HostVeth, b.Interfaces[0].HostVeth
			wantState(t, "node after both", n.ns, []string{
				"link " + vethA + " veth up mtu 1500",
				"link " + vethB + " veth up mtu 1500",
				"route main 10.1.0.6/32 dev " + vethB + " scope link",
				"rule 512 to 10.1.0.6/32 lookup main",
				"rule 1536 from 10.1.0.6/32 lookup 3",
			})
		})
	}
}
