package main

import (
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedDelRetryTellsAgentAfterFailure: the agent is down when
// the pod's DEL tells it the pod is gone, so that DEL fails after ipamd
// released the pod; the runtime's retry must still get the agent told,
// or the pod's policies stay enforced in the agent for ever.
func TestPrivilegedDelRetryTellsAgentAfterFailure(t *testing.T) {
	testutil.Privileged(t)
	n, _, del, later := podWithPolicies(t, "fail")
	if n.run(t, del).err == nil {
		t.Fatal("DEL succeeded with the agent down")
	}
	later.start(t)
	for try := 0; n.run(t, del).err != nil; try++ {
		if try == 3 {
			t.Fatal("DEL keeps failing")
		}
	}
	later.mu.Lock()
	told := len(later.deleted)
	later.mu.Unlock()
	if told != 1 {
		t.Errorf("the agent was told the pod is gone %d times after it came back, want 1", told)
	}
}
