package podnet

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/podnet/podnettest"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPodLockWaitsWholeBound: a wait for a busy pod lock lasts its whole
// bound. An ADD's wait must outlast a DEL that holds the lock across the
// network policy agent's answer; a wait that gave up up to a poll pause
// early let the ADD wire and ask the agent to enforce while an agent
// answering at the end of its time had not yet carried out the delete.
func TestPodLockWaitsWholeBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aws-cni.lock")
	const veth = "eni0123456789a"
	held := lockPod(context.Background(), path, veth, time.Second)
	if !held.held() {
		t.Fatal("could not take the free lock")
	}
	defer held.unlock()
	const wait = 50 * time.Millisecond
	start := time.Now()
	if l := lockPod(context.Background(), path, veth, wait); l.held() {
		l.unlock()
		t.Fatal("took a lock that is held")
	}
	if got := time.Since(start); got < wait {
		t.Errorf("the wait for the busy lock gave up after %v, before its bound %v", got, wait)
	}
}

// TestADDOutwaitsDELPolicyHold: an ADD waits for the pod lock longer
// than a DEL holds it across the agent's answer (see HoldPodLockForDEL).
func TestADDOutwaitsDELPolicyHold(t *testing.T) {
	if addLockWait <= PolicyCallTimeout+lockPollMax {
		t.Errorf("ADD waits %v for the pod lock; a DEL holds it up to %v for the agent's answer", addLockWait, PolicyCallTimeout)
	}
}

// TestPrivilegedSetupLockWaitEndsAtDeadline: an ADD whose own deadline
// comes while it waits for a busy pod lock ends by that deadline, with
// the deadline as its error and nothing wired on the node side; before,
// it waited the lock's whole 3 s bound past its deadline and then wired
// unlocked.
func TestPrivilegedSetupLockWaitEndsAtDeadline(t *testing.T) {
	testutil.Privileged(t)
	lockFile := filepath.Join(t.TempDir(), "aws-cni.lock")
	n := newNode(t, "192.168.0.10")
	pod := Pod{NetNS: testutil.NewNS(t).Path(), MTU: 1500, Sandbox: "sandbox-b", LockFile: lockFile,
		Interfaces: []Interface{iface("default", "p", "10.1.0.6", 0, 3)}}
	var other *podLock
	n.do(t, func() error {
		other = lockPod(context.Background(), lockFile, pod.lockName(), time.Second)
		if !other.held() {
			return errors.New("could not take the free lock")
		}
		return nil
	})
	defer other.unlock()

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := n.run(func() error { return Setup(ctx, pod) })
	endedBeforeLockBound(t, "Setup", start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Setup = %v, want its deadline exceeded", err)
	}
	wantState(t, "node", n.ns, []string{"link " + pod.Interfaces[0].HostVeth + " veth up mtu 1500"})
}

// TestPrivilegedSetupBranchLockWaitEndsAtDeadline: a branch pod's ADD
// whose own deadline comes while it waits for its VLAN id's lock (another
// pod's DEL of the id holds it) ends by that deadline, with the deadline
// as its error and no VLAN link, table or rule made.
func TestPrivilegedSetupBranchLockWaitEndsAtDeadline(t *testing.T) {
	testutil.Privileged(t)
	lockFile := filepath.Join(t.TempDir(), "aws-cni.lock")
	e := newBranchEnv(t)
	b := e.branch(testutil.NewNS(t), false)
	b.Pod.Sandbox, b.Pod.LockFile = "sandbox-b", lockFile
	var other *podLock
	e.node.do(t, func() error {
		other = lockVLAN(context.Background(), lockFile, b.VLANID, time.Second)
		if !other.held() {
			return errors.New("could not take the free VLAN lock")
		}
		return nil
	})
	defer other.unlock()

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := e.node.run(func() error { return SetupBranch(ctx, b, podnettest.MacvlanVLAN{}) })
	endedBeforeLockBound(t, "SetupBranch", start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("SetupBranch = %v, want its deadline exceeded", err)
	}
	wantState(t, "node", e.node.ns, []string{
		"link eth1 veth up mtu 1500",
		"link " + b.Pod.Interfaces[0].HostVeth + " veth up mtu 9001",
	})
}

// endedBeforeLockBound fails the test when an ADD begun at start, with a
// 0.5 s deadline, ran as long as a lock wait's whole bound: one that waits
// past its deadline waits all of addLockWait (see
// TestPodLockWaitsWholeBound), which no return by the deadline does, even
// stalled 2 s on a loaded machine; a bound of "a little past the
// deadline" failed on such stalls.
func endedBeforeLockBound(t *testing.T, what string, start time.Time) {
	t.Helper()
	if took := time.Since(start); took >= addLockWait {
		t.Errorf("%s took %v, its lock wait's whole bound %v, not its 0.5 s deadline", what, took, addLockWait)
	}
}
