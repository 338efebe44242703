package awsutils

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

func TestRetriesThrottledCalls(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	rec := &recorder{}
	e := newTestEC2(t, env, func(c *Config) { c.Observer = rec })
	setFaults(t, env.Sim, vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "DescribeInstances", Code: "RequestLimitExceeded", Count: 3}}})

	if _, err := e.Instance(testCtx(t), instanceID); err != nil {
		t.Fatalf("Instance after 3 throttles: %v", err)
	}
	if got := env.Sim.Stats().Calls["DescribeInstances"]; got != 4 {
		t.Errorf("simulator saw %d DescribeInstances, want 4", got)
	}
	want := CallStats{Calls: 1, Attempts: 4, Errors: 3, Throttles: 3}
	if got := e.Stats()["DescribeInstances"]; got != want || got.Retries() != 3 {
		t.Errorf("accounting = %+v, want %+v", got, want)
	}
	obs := rec.snapshot()
	wantObs := []observed{
		{"DescribeInstances", "RequestLimitExceeded", true},
		{"DescribeInstances", "RequestLimitExceeded", true},
		{"DescribeInstances", "RequestLimitExceeded", true},
		{"DescribeInstances", "", false},
	}
	if !slices.Equal(obs, wantObs) {
		t.Errorf("observer saw %v, want %v", obs, wantObs)
	}
}

func TestRetriesAgainstTheSimulatorsTokenBucket(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env, func(c *Config) {
		c.Retry.MaxAttempts = 10
		c.Retry.ThrottleBackoff = Backoff{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	})
	setFaults(t, env.Sim, vpcsim.Faults{Throttle: vpcsim.Throttle{Enabled: true, Buckets: map[string]vpcsim.Bucket{
		"describe": {Size: 2, Refill: 20},
	}}})
	ctx := testCtx(t)
	for i := range 6 {
		if _, err := e.InstanceType(ctx, "m5.large"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	st := e.Stats()["DescribeInstanceTypes"]
	if st.Calls != 6 || st.Throttles == 0 || st.Attempts != st.Calls+st.Throttles {
		t.Errorf("accounting = %+v, want 6 calls and some throttled retries", st)
	}
	if sim := env.Sim.Stats().Throttled["DescribeInstanceTypes"]; int(sim) != st.Throttles {
		t.Errorf("simulator throttled %d, we counted %d", sim, st.Throttles)
	}
}

func TestRetriesServerErrors(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env)
	setFaults(t, env.Sim, vpcsim.Faults{Errors: []vpcsim.ErrorRule{
		{Action: "DescribeSubnets", Code: "InternalError", Count: 1},
		{Action: "DescribeSubnets", Code: "Unavailable", Count: 1},
	}})
	inst, err := e.Instance(testCtx(t), instanceID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Subnets(testCtx(t), inst.VPCID, inst.AZ); err != nil {
		t.Fatalf("Subnets after a 500 and a 503: %v", err)
	}
	if got := env.Sim.Stats().Calls["DescribeSubnets"]; got != 3 {
		t.Errorf("simulator saw %d DescribeSubnets, want 3", got)
	}
	if got := e.Stats()["DescribeSubnets"]; got.Retries() != 2 || got.Errors != 2 || got.Throttles != 0 {
		t.Errorf("accounting = %+v", got)
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env, func(c *Config) { c.Retry.MaxAttempts = 3 })
	setFaults(t, env.Sim, vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "DescribeInstances", Code: "RequestLimitExceeded"}}})
	_, err := e.Instance(testCtx(t), instanceID)
	if !IsThrottle(err) {
		t.Fatalf("err = %v, want the throttling error", err)
	}
	if got := env.Sim.Stats().Calls["DescribeInstances"]; got != 3 {
		t.Errorf("simulator saw %d calls, want 3", got)
	}
}

func TestRetriesStopWithContext(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env, func(c *Config) {
		c.Retry.MaxAttempts = 100
		c.Retry.ThrottleBackoff = Backoff{Base: time.Hour, Max: time.Hour}
	})
	setFaults(t, env.Sim, vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "DescribeInstances", Code: "RequestLimitExceeded"}}})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := e.Instance(ctx, instanceID)
	if err == nil {
		t.Fatal("no error")
	}
	if got := env.Sim.Stats().Calls["DescribeInstances"]; got != 1 {
		t.Errorf("simulator saw %d calls, want 1 (the backoff outlasts the context)", got)
	}
}

func TestNoRetryOnClientErrors(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env)
	setFaults(t, env.Sim, vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "CreateTags", Code: "InvalidParameterValue", Count: 1}}})
	inst, err := e.Instance(testCtx(t), instanceID)
	if err != nil {
		t.Fatal(err)
	}
	err = e.CreateTags(testCtx(t), inst.PrimaryENI, map[string]string{"a": "b"})
	if Code(err) != "InvalidParameterValue" {
		t.Fatalf("err = %v, want InvalidParameterValue", err)
	}
	if !strings.Contains(err.Error(), inst.PrimaryENI) {
		t.Errorf("error does not name the resource: %v", err)
	}
	if got := env.Sim.Stats().Calls["CreateTags"]; got != 1 {
		t.Errorf("simulator saw %d CreateTags, want exactly 1", got)
	}
	// Missing IAM permission: not retried, classified.
	setFaults(t, env.Sim, vpcsim.Faults{DenyActions: []string{"DescribeSubnets"}})
	_, err = e.Subnets(testCtx(t), inst.VPCID, inst.AZ)
	if !IsUnauthorized(err) || env.Sim.Stats().Calls["DescribeSubnets"] != 1 {
		t.Errorf("denied DescribeSubnets: %v after %d calls", err, env.Sim.Stats().Calls["DescribeSubnets"])
	}
}

func TestClientLimiterKeepsBurstUnderBucket(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	// Our bucket is smaller and refills at half the simulator's rate: we
	// take tokens when a request leaves, EC2 when it arrives, and requests
	// delayed on the way can arrive bunched; the headroom absorbs that.
	// Without our limiter this burst is throttled (TestRetriesAgainstThe...).
	setFaults(t, env.Sim, vpcsim.Faults{Throttle: vpcsim.Throttle{Enabled: true, Buckets: map[string]vpcsim.Bucket{
		"describe": {Size: 5, Refill: 20},
	}}})
	e := newTestEC2(t, env, func(c *Config) {
		c.Retry.MaxAttempts = 1 // a throttle would surface as an error
		c.Limits = RateLimits{Buckets: map[LimitClass]Bucket{LimitDescribe: {Size: 3, RefillPerSecond: 10}}}
	})
	ctx := testCtx(t)
	const burst = 12
	errs := make(chan error, burst)
	for range burst {
		go func() { _, err := e.InstanceType(ctx, "m5.large"); errs <- err }()
	}
	for range burst {
		if err := <-errs; err != nil {
			t.Errorf("burst call: %v", err)
		}
	}
	if n := env.Sim.Stats().Throttled["DescribeInstanceTypes"]; n != 0 {
		t.Errorf("simulator throttled %d calls of the burst", n)
	}
	if n := env.Sim.Stats().Calls["DescribeInstanceTypes"]; n != burst {
		t.Errorf("simulator saw %d calls, want %d", n, burst)
	}
}

func TestClientLimiterWaitHonoursContext(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env, func(c *Config) {
		c.Limits = RateLimits{Buckets: map[LimitClass]Bucket{LimitDescribe: {Size: 1, RefillPerSecond: 0.001}}}
	})
	if _, err := e.InstanceType(testCtx(t), "m5.large"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := e.InstanceType(ctx, "m5.large"); err == nil {
		t.Fatal("second call passed an empty bucket")
	}
	if n := env.Sim.Stats().Calls["DescribeInstanceTypes"]; n != 1 {
		t.Errorf("simulator saw %d calls, want 1", n)
	}
}

func TestSubnets(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env)
	ctx := testCtx(t)
	inst, _ := node(t, e)
	subnets, err := e.Subnets(ctx, inst.VPCID, inst.AZ)
	if err != nil {
		t.Fatal(err)
	}
	var simSubnets []vpcsim.SubnetView
	for _, s := range env.Sim.State().Subnets {
		if s.VPCID == inst.VPCID && s.AZ == inst.AZ {
			simSubnets = append(simSubnets, s)
		}
	}
	if len(subnets) != len(simSubnets) || len(subnets) < 2 {
		t.Fatalf("Subnets = %+v, simulator has %+v", subnets, simSubnets)
	}
	for i, s := range subnets {
		if i > 0 && subnets[i-1].AvailableIPs < s.AvailableIPs {
			t.Errorf("not sorted by free addresses: %d before %d", subnets[i-1].AvailableIPs, s.AvailableIPs)
		}
		j := slices.IndexFunc(simSubnets, func(v vpcsim.SubnetView) bool { return v.ID == s.ID })
		if j < 0 || simSubnets[j].CIDR != s.CIDR || simSubnets[j].AvailableIPAddressCount != s.AvailableIPs || len(simSubnets[j].Tags) != len(s.Tags) {
			t.Errorf("subnet %+v does not match the simulator", s)
		}
	}
	eligible := 0
	for _, s := range subnets {
		if SubnetEligible(s, inst.SubnetID, "") {
			eligible++
		}
	}
	if eligible < 2 {
		t.Errorf("want the primary and the kubernetes.io/role/cni subnet eligible, got %d of %+v", eligible, subnets)
	}
}

func TestLeakedENIsPaginated(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env, func(c *Config) { c.ClusterName = "prod"; c.LeakedPageSize = 5 })
	other := newTestEC2(t, env, func(c *Config) { c.ClusterName = "other" })
	ctx := testCtx(t)
	inst, _ := node(t, e)
	base := CreateENIRequest{InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups}

	var want []string
	for range 7 {
		eni, err := e.CreateENI(ctx, base)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, eni.ID)
	}
	// Not candidates: another cluster's, one not described as ours, one in use.
	if _, err := other.CreateENI(ctx, base); err != nil {
		t.Fatal(err)
	}
	foreign := base
	foreign.Description = "created by hand"
	if _, err := e.CreateENI(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	if _, err := e.AllocateENI(ctx, AllocateENIRequest{CreateENIRequest: base}); err != nil {
		t.Fatal(err)
	}

	callsBefore := e.Stats()["DescribeNetworkInterfaces"].Calls
	got, err := e.LeakedENIs(ctx, inst.VPCID, "prod")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, g := range got {
		ids = append(ids, g.ID)
		if g.Status != "available" || g.Tags[TagInstanceID] != instanceID {
			t.Errorf("candidate %+v", g)
		}
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("LeakedENIs = %v, want %v", ids, want)
	}
	// 8 matching ENIs (7 + the hand-described one) in pages of 5: 2 pages.
	if pages := e.Stats()["DescribeNetworkInterfaces"].Calls - callsBefore; pages != 2 {
		t.Errorf("%d DescribeNetworkInterfaces pages, want 2", pages)
	}
	// Without a cluster name the other cluster's ENI is a candidate too.
	all, err := e.LeakedENIs(ctx, inst.VPCID, "")
	if err != nil || len(all) != 8 {
		t.Errorf("LeakedENIs without cluster = %d, %v; want 8", len(all), err)
	}
	// The sweep: all fresh, so nothing is deleted.
	for _, g := range got {
		if a := DecideLeaked(g.Tags, time.Now()); a != LeakSkip {
			t.Errorf("fresh ENI %s: %s", g.ID, a)
		}
		if a := DecideLeaked(g.Tags, time.Now().Add(LeakedENIMinAge)); a != LeakDelete {
			t.Errorf("old ENI %s: %s", g.ID, a)
		}
	}
}

func TestIMDSOnlyModeMakesNoEC2Calls(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env, func(c *Config) { c.IMDSOnly = true })
	ctx := testCtx(t)
	if _, err := e.Instance(ctx, instanceID); !errors.Is(err, ErrIMDSOnly) {
		t.Errorf("Instance: %v", err)
	}
	if _, _, err := e.DescribeENIs(ctx, []string{"eni-1"}); !errors.Is(err, ErrIMDSOnly) {
		t.Errorf("DescribeENIs: %v", err)
	}
	if n := len(env.Sim.Stats().Calls); n != 0 {
		t.Errorf("simulator saw calls: %v", env.Sim.Stats().Calls)
	}
}

func TestEndpointFromSDKVariable(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	t.Setenv("AWS_ENDPOINT_URL_EC2", env.EC2URL)
	e := newTestEC2(t, env, func(c *Config) { c.EC2Endpoint = "" })
	if _, err := e.Instance(testCtx(t), instanceID); err != nil {
		t.Fatalf("Instance via AWS_ENDPOINT_URL_EC2: %v", err)
	}
	if n := env.Sim.Stats().Calls["DescribeInstances"]; n != 1 {
		t.Errorf("simulator saw %d calls", n)
	}
}

func TestLeakedENIWithoutCreatedAtIsStampedNotDeleted(t *testing.T) {
	sc := simtest.Basic()
	sc.NetworkInterfaces = []vpcsim.ENISpec{{
		ID: "eni-0000000000000feed", Subnet: simtest.NodeSubnetID, Description: ENIDescription("i-00000000000000dead"),
		Tags: map[string]string{TagInstanceID: "i-00000000000000dead"},
	}}
	env := simtest.Start(t, sc)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	e := newTestEC2(t, env, func(c *Config) { c.Now = func() time.Time { return now } })
	ctx := testCtx(t)

	got, err := e.LeakedENIs(ctx, simtest.VPCID, "")
	if err != nil || len(got) != 1 || got[0].ID != "eni-0000000000000feed" {
		t.Fatalf("LeakedENIs = %+v, %v", got, err)
	}
	if a := DecideLeaked(got[0].Tags, now); a != LeakStamp {
		t.Fatalf("decision = %s, want stamp", a)
	}
	if err := e.CreateTags(ctx, got[0].ID, map[string]string{TagCreatedAt: now.Format(time.RFC3339)}); err != nil {
		t.Fatal(err)
	}
	sv, _ := simENI(env.Sim, got[0].ID)
	if sv.Tags[TagCreatedAt] != "2026-11-23T10:00:00Z" {
		t.Errorf("createdAt = %q", sv.Tags[TagCreatedAt])
	}
	if a := DecideLeaked(sv.Tags, now.Add(LeakedENIMinAge)); a != LeakDelete {
		t.Errorf("next sweep decision = %s, want delete", a)
	}
}
