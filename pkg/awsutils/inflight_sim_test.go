package awsutils

import (
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// An operation is one activity from its start to its return, retries
// included, named by the action and the ENI it is about.
func TestCallTrackerShowsOperationsInFlight(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	tr := introspect.NewTracker(nil)
	e := newTestEC2(t, env, func(c *Config) { c.Calls = tr })
	eniID := simENIIDs(env.Sim)[0]
	setFaults(t, env.Sim, vpcsim.Faults{
		Latency: map[string]vpcsim.Duration{"AssignPrivateIpAddresses": vpcsim.Duration(300 * time.Millisecond)},
		Errors:  []vpcsim.ErrorRule{{Action: "AssignPrivateIpAddresses", Code: "RequestLimitExceeded", Count: 2}},
	})

	done := make(chan error, 1)
	go func() {
		_, err := e.AssignIPv4(testCtx(t), eniID, 1)
		done <- err
	}()
	want := introspect.Activity{Kind: "ec2", What: "AssignPrivateIpAddresses " + eniID}
	seen := false
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("AssignIPv4: %v", err)
			}
			running = false
		case <-time.After(5 * time.Millisecond):
		}
		cur := tr.Current()
		if !running {
			if len(cur) != 0 {
				t.Errorf("after the call returned, in flight: %+v", cur)
			}
			break
		}
		if len(cur) > 1 {
			t.Fatalf("one operation shows as %d activities: %+v", len(cur), cur)
		}
		if len(cur) == 1 {
			if cur[0].Kind != want.Kind || cur[0].What != want.What {
				t.Fatalf("in flight %+v, want %s %q", cur[0], want.Kind, want.What)
			}
			seen = true
		}
	}
	if !seen {
		t.Errorf("the call (3 attempts of 300 ms) never showed in flight")
	}
	if got := e.Stats()["AssignPrivateIpAddresses"]; got.Attempts != 3 {
		t.Errorf("attempts %d, want 3 (retries within the one activity)", got.Attempts)
	}
}
