package ipamd

import (
	"context"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// An EC2 call of the pool shows in /v1/pool's WaitingOn while it runs
// (awsutils reports it to ipamd's tracker) and is gone once it returned.
func TestPoolShowsEC2CallInFlight(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{
		"AssignPrivateIpAddresses": vpcsim.Duration(300 * time.Millisecond)}}); err != nil {
		t.Fatal(err)
	}
	before := h.calls()["AssignPrivateIpAddresses"]
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.n.PoolCycle(context.Background())
	}()
	seen := false
	for running := true; running && !seen; {
		select {
		case <-done:
			running = false
		case <-time.After(5 * time.Millisecond):
		}
		seen = waitingOn(h.n.Introspection().Pool(), "ec2", "AssignPrivateIpAddresses eni-")
	}
	<-done
	if h.calls()["AssignPrivateIpAddresses"] == before {
		t.Fatal("the pool cycle made no AssignPrivateIpAddresses call")
	}
	if !seen {
		t.Error("AssignPrivateIpAddresses (300 ms) never showed in WaitingOn")
	}
	if p := h.n.Introspection().Pool(); len(p.WaitingOn) != 0 {
		t.Errorf("after the cycle, WaitingOn %+v", p.WaitingOn)
	}
}
