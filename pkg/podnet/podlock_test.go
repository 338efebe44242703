package podnet

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// raceLateDEL runs del, a late DEL of a pod's old sandbox, and pauses it
// right after it checked that what it is about to remove is its own; then
// it runs add, the new sandbox's ADD, until add has finished or is blocked
// on the pod lock; then it lets del go on and waits for both.
func raceLateDEL(t *testing.T, n node, del, add func() error) (delErr, addErr error) {
	t.Helper()
	return raceDELAt(t, n, &testHookOwnerChecked, del, add)
}

// raceDELAt is raceLateDEL pausing del where it runs the test hook *at.
func raceDELAt(t *testing.T, n node, at *func(), del, add func() error) (delErr, addErr error) {
	t.Helper()
	checked, release, busy := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var onceChecked, onceBusy sync.Once
	*at = func() {
		onceChecked.Do(func() {
			close(checked)
			<-release
		})
	}
	testHookLockBusy = func() { onceBusy.Do(func() { close(busy) }) }
	t.Cleanup(func() { *at, testHookLockBusy = nil, nil })

	delDone, addDone := make(chan error, 1), make(chan error, 1)
	go func() { delDone <- n.run(del) }()
	select {
	case <-checked:
	case err := <-delDone:
		t.Fatalf("late DEL ended (%v) without reaching its ownership check", err)
	case <-time.After(10 * time.Second):
		t.Fatal("late DEL never reached its ownership check")
	}
	go func() { addDone <- n.run(add) }()
	addFinished := false
	select {
	case addErr = <-addDone:
		addFinished = true
	case <-busy:
	case <-time.After(10 * time.Second):
		t.Fatal("ADD neither finished nor waited for the pod lock")
	}
	close(release)
	delErr = <-delDone
	if !addFinished {
		addErr = <-addDone
	}
	return delErr, addErr
}

// TestPrivilegedPodLockLateDELRegular: the old sandbox A's late DEL has
// found the pod's veth marked as the new sandbox B's and not routing the
// address (B's ADD made its pair early and waits for ipamd), so it is
// about to delete the address's rules, A's; B's ADD, given the same
// address on another ENI, wires the pod in that window. The pod lock
// makes B's ADD wait for A's DEL, so B keeps its rules.
func TestPrivilegedPodLockLateDELRegular(t *testing.T) {
	ctx := context.Background()
	lockFile := filepath.Join(t.TempDir(), "aws-cni.lock")
	n := newNode(t, "192.168.0.10")
	a := Pod{NetNS: testutil.NewNS(t).Path(), MTU: 1500, Sandbox: "sandbox-a", LockFile: lockFile,
		Interfaces: []Interface{iface("default", "p", "10.1.0.6", 0, 3)}}
	n.do(t, func() error { return Setup(ctx, a) })
	veth := a.Interfaces[0].HostVeth
	n.vethGone(t, veth)

	b := Pod{NetNS: testutil.NewNS(t).Path(), MTU: 1500, Sandbox: "sandbox-b", LockFile: lockFile,
		Interfaces: []Interface{iface("default", "p", "10.1.0.6", 0, 4)}}
	n.do(t, func() error {
		var err error
		b.Early, err = CreateVeth(b.NetNS, b.Sandbox, veth, "eth0", b.MTU)
		return err
	})
	delErr, addErr := raceLateDEL(t, n,
		func() error {
			_, err := StartTeardown(ctx, a).Finish(ctx, a)
			return err
		},
		func() error { return Setup(ctx, b) })
	if delErr != nil || addErr != nil {
		t.Fatalf("A's DEL: %v; B's ADD: %v", delErr, addErr)
	}
	wantState(t, "node after both", n.ns, []string{
		"link " + veth + " veth up mtu 1500",
		"route main 10.1.0.6/32 dev " + veth + " scope link",
		"rule 512 to 10.1.0.6/32 lookup main",
		"rule 1536 from 10.1.0.6/32 lookup 4",
	})
}

// TestPrivilegedPodLockLateDELBranch: a branch-ENI pod's old sandbox A
// has gone with its veth; A's late DEL finds no veth of the pod, so the
// branch looks like A's, and is about to remove the VLAN link, table and
// rules; the new sandbox B's ADD, on the same branch ENI, wires the pod in
// that window. The pod lock makes B's ADD wait, so B's wiring is whole.
func TestPrivilegedPodLockLateDELBranch(t *testing.T) {
	eachMode(t, func(t *testing.T, strict bool) {
		ctx := context.Background()
		lockFile := filepath.Join(t.TempDir(), "aws-cni.lock")
		e := newBranchNode(t, strict)
		a := e.goneSandboxA(t, strict, lockFile)
		veth := a.Pod.Interfaces[0].HostVeth

		b := e.branch(testutil.NewNS(t), strict)
		b.Pod.Sandbox, b.Pod.LockFile = "sandbox-b", lockFile
		delErr, addErr := raceLateDEL(t, e.node,
			func() error { _, err := TeardownBranch(ctx, a.Pod, branchVLAN); return err },
			func() error { return SetupBranch(ctx, b, podnettest.MacvlanVLAN{}) })
		if delErr != nil || addErr != nil {
			t.Fatalf("A's DEL: %v; B's ADD: %v", delErr, addErr)
		}
		want := wiredBranch(veth, strict)
		wantState(t, "node after both", e.node.ns, want)
	})
}
