package podnet

import (
	"path/filepath"
	"testing"
	"time"
)

// TestPodLockWaitsWholeBound: a wait for a busy pod lock lasts its whole
// bound. An ADD's wait must outlast a DEL that holds the lock across the
// network policy agent's answer; a wait that gave up up to a poll pause
// early let the ADD wire and ask the agent to enforce while an agent
// answering at the end of its time had not yet carried out the delete.
func TestPodLockWaitsWholeBound(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aws-cni.lock")
	const veth = "eni0123456789a"
	held := lockPod(path, veth, time.Second)
	if !held.held() {
		t.Fatal("could not take the free lock")
	}
	defer held.unlock()
	const wait = 50 * time.Millisecond
	start := time.Now()
	if l := lockPod(path, veth, wait); l.held() {
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
