package awsutils

import (
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestLeakedENIListingCountedOnceAsUpstream: upstream's leaked-ENI sweep
// counts its paginated DescribeNetworkInterfaces once per listing in
// awscni_ec2api_req_count, and only when every page came back; a failed
// listing counts in awscni_ec2api_error_count and awscni_aws_api_error_count
// only; no page is timed in awscni_aws_api_latency_ms
// (docs/compatibility.md, "Metrics"). vpccni_ec2_calls_total still counts
// every page, as EC2 charges each.
func TestLeakedENIListingCountedOnceAsUpstream(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e, scrape := meteredEC2(t, env, func(c *Config) { c.LeakedPageSize = 5 })
	plain := newTestEC2(t, env)
	ctx := testCtx(t)
	inst, _ := node(t, plain)
	for range 12 {
		if _, err := plain.CreateENI(ctx, CreateENIRequest{InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups}); err != nil {
			t.Fatal(err)
		}
	}

	got, err := e.LeakedENIs(ctx, inst.VPCID, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 12 {
		t.Fatalf("LeakedENIs found %d ENIs, want 12", len(got))
	}
	s := scrape()
	pages := s[`vpccni_ec2_calls_total{action="DescribeNetworkInterfaces",code=""}`]
	if pages < 3 {
		t.Fatalf("vpccni_ec2_calls_total counts %v pages for 12 ENIs at 5 a page, want at least 3", pages)
	}
	if got := s[`awscni_ec2api_req_count{fn="DescribeNetworkInterfaces"}`]; got != 1 {
		t.Errorf("awscni_ec2api_req_count{fn=\"DescribeNetworkInterfaces\"} = %v after one listing of %v pages, want 1", got, pages)
	}

	setFaults(t, env.Sim, vpcsim.Faults{DenyActions: []string{"DescribeNetworkInterfaces"}})
	if _, err := e.LeakedENIs(ctx, inst.VPCID, ""); err == nil {
		t.Fatal("LeakedENIs succeeded though DescribeNetworkInterfaces is denied")
	}
	s = scrape()
	for k, want := range map[string]float64{
		`awscni_ec2api_req_count{fn="DescribeNetworkInterfaces"}`:                                   1,
		`awscni_ec2api_error_count{fn="DescribeNetworkInterfaces"}`:                                 1,
		`awscni_aws_api_error_count{api="DescribeNetworkInterfaces",error="UnauthorizedOperation"}`: 1,
	} {
		if got := s[k]; got != want {
			t.Errorf("%s = %v after a granted and a refused listing, want %v", k, got, want)
		}
	}
	if s.has("awscni_aws_api_latency_ms_count", "api", "DescribeNetworkInterfaces") {
		t.Error("awscni_aws_api_latency_ms has api=\"DescribeNetworkInterfaces\" series from the listing; upstream times none")
	}
}
