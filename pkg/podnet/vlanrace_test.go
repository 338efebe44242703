package podnet

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// reusedVLAN is a node with pod A wired on branch VLAN 7 (its netns still
// there, as during its DEL) and pod C, another pod given VLAN id 7 on
// another branch ENI, not wired yet.
type reusedVLAN struct {
	e            branchEnv
	a, c         Branch
	vethA, vethC string
}

func newReusedVLAN(t *testing.T, strict bool) reusedVLAN {
	t.Helper()
	lockFile := filepath.Join(t.TempDir(), "aws-cni.lock")
	r := reusedVLAN{e: newBranchNode(t, strict)}
	r.a = r.e.branch(testutil.NewNS(t), strict)
	r.a.Pod.Sandbox, r.a.Pod.LockFile = "sandbox-a", lockFile
	r.e.node.do(t, func() error { return SetupBranch(context.Background(), r.a, podnettest.MacvlanVLAN{}) })
	r.vethA = r.a.Pod.Interfaces[0].HostVeth

	r.c = r.e.podC(testutil.NewNS(t), strict)
	r.c.Pod.LockFile = lockFile
	r.vethC = r.c.Pod.Interfaces[0].HostVeth
	return r
}

// race runs A's DEL, paused at the test hook *at while C's ADD runs (see
// raceDELAt), and checks the node then has C's whole wiring and nothing
// of A's but its veth.
func (r reusedVLAN) race(t *testing.T, at *func()) {
	t.Helper()
	ctx := context.Background()
	delErr, addErr := raceDELAt(t, r.e.node, at,
		func() error { _, err := TeardownBranch(ctx, r.a.Pod, branchVLAN); return err },
		func() error { return SetupBranch(ctx, r.c, podnettest.MacvlanVLAN{}) })
	if delErr != nil || addErr != nil {
		t.Fatalf("A's DEL: %v; C's ADD: %v", delErr, addErr)
	}
	want := append(wiredBranchOn(branchVLAN, "10.2.0.77", r.vethC, r.c.Strict), "link "+r.vethA+" veth up mtu 9001")
	wantState(t, "node after A's DEL and C's ADD", r.e.node.ns, want)
}

// TestPrivilegedBranchDELRacesVLANReuse: pod A's DEL has checked that
// VLAN id 7's link is A's, and in that moment the id, released with A's
// branch ENI, goes to another pod C, whose ADD holds C's pod lock, not
// A's. A's DEL must remove only what is A's: its route and rules, by A's
// host veth and A's VLAN link as the kernel shows them, never C's VLAN
// link, table 107 or their rules. C's ADD either waits for the VLAN's
// lock or, from a plugin that ignores the lock (upstream's), wires VLAN 7
// whole in that moment.
func TestPrivilegedBranchDELRacesVLANReuse(t *testing.T) {
	for _, strict := range []bool{true, false} {
		for _, locks := range []bool{true, false} {
			name := map[bool]string{true: "strict", false: "standard"}[strict] + map[bool]string{true: "/C locks", false: "/C ignores the lock"}[locks]
			t.Run(name, func(t *testing.T) {
				r := newReusedVLAN(t, strict)
				if !locks {
					r.c.Pod.LockFile = ""
				}
				r.race(t, &testHookOwnerChecked)
			})
		}
	}
}

// TestPrivilegedBranchDELVLANLock: A's DEL has removed its VLAN link and
// found no other link of the name, so the `iif vlan.eth.7` rule is A's,
// and is about to delete it; C's ADD, given VLAN id 7, wires in that
// moment. The VLAN's lock makes C's ADD wait, so C keeps that rule
// (strict mode, the only one with it).
func TestPrivilegedBranchDELVLANLock(t *testing.T) {
	r := newReusedVLAN(t, true)
	r.race(t, &testHookVLANNameChecked)
}
