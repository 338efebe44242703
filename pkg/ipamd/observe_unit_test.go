package ipamd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestCustomNetworkingFeatureWithPodENI: with custom networking and
// security groups for pods, the CNINode carries CustomNetworking=<the
// node's ENIConfig> next to SecurityGroupsForPods; the "default" ENIConfig
// is not declared (docs/compatibility.md, "Kubernetes objects").
func TestCustomNetworkingFeatureWithPodENI(t *testing.T) {
	for _, tc := range []struct {
		eniConfig string
		want      map[string]string
	}{
		{"pods-a", map[string]string{featureCustomNet: "pods-a", featureSGPP: ""}},
		{"default", map[string]string{featureSGPP: ""}},
	} {
		t.Run(tc.eniConfig, func(t *testing.T) {
			k := &fakeKube{schedulable: true, maxPods: 110,
				eniConfig: ENIConfig{Name: tc.eniConfig, Subnet: simtest.CustomSubnetAID}}
			h := kubeHarness(t, k, func(c *config.Config) { c.CustomNetworking = true; c.EnablePodENI = true })
			h.n.PoolCycle(context.Background())
			k.mu.Lock()
			defer k.mu.Unlock()
			if len(k.features) != len(tc.want) {
				t.Fatalf("CNINode features %v, want %v", k.features, tc.want)
			}
			for name, v := range tc.want {
				if got, ok := k.features[name]; !ok || got != v {
					t.Errorf("CNINode features %v, want %v", k.features, tc.want)
				}
			}
		})
	}
}

// TestLateAPIServer: ipamd started without an API server takes one later,
// re-reads max pods from the node and answers /v1/eni-configs.
func TestLateAPIServer(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	src := h.n.Introspection()
	if mp := src.Pool().Targets.MaxPods; mp != 29 { // m5.large: 3 × (10 − 1) + 2
		t.Fatalf("max pods without an API server %d, want 29", mp)
	}
	if _, err := src.ENIConfigName(context.Background()); err == nil {
		t.Fatal("ENIConfigName without an API server: no error")
	}
	h.n.SetKubernetes(context.Background(), &fakeKube{schedulable: true, maxPods: 7, eniConfig: ENIConfig{Name: "pods-a"}})
	if mp := src.Pool().Targets.MaxPods; mp != 7 {
		t.Errorf("max pods after the API server came %d, want the node's 7", mp)
	}
	if name, err := src.ENIConfigName(context.Background()); err != nil || name != "pods-a" {
		t.Errorf("ENIConfigName = %q, %v", name, err)
	}
}

func waitingOn(p introspect.Pool, kind, what string) bool {
	for _, a := range p.WaitingOn {
		if a.Kind == kind && strings.Contains(a.What, what) {
			return true
		}
	}
	return false
}

// TestPoolShowsCooldownAndBackoff: a full subnet shows as a cooldown and a
// persistent failure as a backoff in /v1/pool's WaitingOn, and both
// disappear when the pool grows again.
func TestPoolShowsCooldownAndBackoff(t *testing.T) {
	times := fastTimes
	times.FailureBackoff = time.Minute
	h := newHarness(t, harnessOpts{times: &times})
	ctx := context.Background()
	if err := h.env.Sim.SetFaults(vpcsimFaults("AssignPrivateIpAddresses", "InsufficientFreeAddressesInSubnet")); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(ctx)
	p := h.n.Introspection().Pool()
	if !waitingOn(p, waitCooldown, "subnet full (EC2 InsufficientFreeAddressesInSubnet)") {
		t.Errorf("WaitingOn after a full subnet: %+v", p.WaitingOn)
	}
	if !strings.Contains(p.LastAction, "failed") {
		t.Errorf("LastAction %q does not say it failed", p.LastAction)
	}

	// A short backoff, so the test can wait for its end.
	short := fastTimes
	short.FailureBackoff = 2 * time.Second
	h2 := newHarness(t, harnessOpts{times: &short})
	if err := h2.env.Sim.SetFaults(vpcsim.Faults{DenyActions: []string{"AssignPrivateIpAddresses"}}); err != nil {
		t.Fatal(err)
	}
	failedAt := time.Now() // the backoff ends no earlier than failedAt + 2 s
	h2.n.PoolCycle(ctx)
	const backoff = "backoff after 1 failed pool action(s) on card 0: missing IAM permission"
	if p := h2.n.Introspection().Pool(); !waitingOn(p, waitCooldown, backoff) {
		t.Errorf("WaitingOn after a denied call: %+v", p.WaitingOn)
	}
	// Permission granted: no EC2 call until the backoff is over, then the
	// pool grows and the wait is gone.
	if err := h2.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	before := h2.calls()
	h2.n.PoolCycle(ctx)
	if d := callDelta(before, h2.calls()); len(d) != 0 && time.Since(failedAt) < short.FailureBackoff {
		t.Errorf("EC2 calls during the backoff: %v", d)
	}
	waitFor(t, 10*time.Second, "the backoff to end", func() bool {
		return !waitingOn(h2.n.Introspection().Pool(), waitCooldown, backoff)
	})
	h2.n.PoolCycle(ctx)
	if p := h2.n.Introspection().Pool(); len(p.WaitingOn) != 0 || p.Cards[0].Free == 0 {
		t.Errorf("after recovery: WaitingOn %+v, free %d", p.WaitingOn, p.Cards[0].Free)
	}
}
