package awsutils

import (
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestDescribeInstanceTypesCountedNotTimedAsUpstream: upstream counts
// DescribeInstanceTypes in awscni_ec2api_req_count and, when it fails,
// awscni_ec2api_error_count, but neither times it in
// awscni_aws_api_latency_ms nor counts its error code in
// awscni_aws_api_error_count (docs/compatibility.md, "Metrics").
func TestDescribeInstanceTypesCountedNotTimedAsUpstream(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e, scrape := meteredEC2(t, env)
	ctx := testCtx(t)
	if _, err := e.InstanceType(ctx, "m5.large"); err != nil {
		t.Fatal(err)
	}
	setFaults(t, env.Sim, vpcsim.Faults{DenyActions: []string{"DescribeInstanceTypes"}})
	if _, err := e.InstanceType(ctx, "m5.large"); err == nil {
		t.Fatal("DescribeInstanceTypes succeeded though denied")
	}

	s := scrape()
	for k, want := range map[string]float64{
		`awscni_ec2api_req_count{fn="DescribeInstanceTypes"}`:                                 2,
		`awscni_ec2api_error_count{fn="DescribeInstanceTypes"}`:                               1,
		`vpccni_ec2_calls_total{action="DescribeInstanceTypes",code=""}`:                      1,
		`vpccni_ec2_calls_total{action="DescribeInstanceTypes",code="UnauthorizedOperation"}`: 1,
	} {
		if got := s[k]; got != want {
			t.Errorf("%s = %v after one granted and one refused DescribeInstanceTypes, want %v", k, got, want)
		}
	}
	for _, family := range []string{"awscni_aws_api_latency_ms_count", "awscni_aws_api_error_count"} {
		if s.has(family, "api", "DescribeInstanceTypes") {
			t.Errorf("%s has api=\"DescribeInstanceTypes\" series; upstream never records one", family)
		}
	}
}
