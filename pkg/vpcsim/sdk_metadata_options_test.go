package vpcsim_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

func metadataOptions(t *testing.T, c *ec2.Client, id string) types.InstanceMetadataOptionsResponse {
	t.Helper()
	out := must[*ec2.DescribeInstancesOutput](t)(c.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{InstanceIds: []string{id}}))
	if len(out.Reservations) != 1 || len(out.Reservations[0].Instances) != 1 {
		t.Fatalf("DescribeInstances %s: %d reservations", id, len(out.Reservations))
	}
	mo := out.Reservations[0].Instances[0].MetadataOptions
	if mo == nil {
		t.Fatalf("DescribeInstances %s: no MetadataOptions", id)
	}
	return *mo
}

func wantHopLimit(t *testing.T, what string, mo types.InstanceMetadataOptionsResponse, hops int32, tokens types.HttpTokensState) {
	t.Helper()
	if got := aws.ToInt32(mo.HttpPutResponseHopLimit); got != hops {
		t.Errorf("%s: HttpPutResponseHopLimit %d, want %d", what, got, hops)
	}
	if mo.HttpTokens != tokens || mo.HttpEndpoint != types.InstanceMetadataEndpointStateEnabled || mo.State != types.InstanceMetadataOptionsStateApplied {
		t.Errorf("%s: tokens %q endpoint %q state %q, want %q enabled applied", what, mo.HttpTokens, mo.HttpEndpoint, mo.State, tokens)
	}
}

// The IMDS hop limit is part of what DescribeInstances reports (EKS's own
// tooling reads it to tell whether pods can reach IMDSv2): EC2's default of
// 1, what the scenario or RunInstances set, and what
// ModifyInstanceMetadataOptions changes. Values outside 1-64 are refused
// naming the field.
func TestDescribeInstancesReportsIMDSHopLimit(t *testing.T) {
	sc := simtest.Basic()
	sc.Instances = append(sc.Instances, vpcsim.InstanceSpec{ID: "i-00000000000000002", Type: "m5.large", Subnet: simtest.NodeSubnetID, IMDSHopLimit: 2})
	env := simtest.Start(t, sc)
	c := newEC2(env.EC2URL)

	wantHopLimit(t, "default", metadataOptions(t, c, simtest.InstanceID), 1, types.HttpTokensStateOptional)
	wantHopLimit(t, "scenario imdsHopLimit 2", metadataOptions(t, c, "i-00000000000000002"), 2, types.HttpTokensStateOptional)

	run := must[*ec2.RunInstancesOutput](t)(c.RunInstances(ctx(t), &ec2.RunInstancesInput{
		InstanceType: types.InstanceTypeM5Large, SubnetId: aws.String(simtest.NodeSubnetID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		MetadataOptions: &types.InstanceMetadataOptionsRequest{HttpPutResponseHopLimit: aws.Int32(3), HttpTokens: types.HttpTokensStateRequired},
	}))
	id := aws.ToString(run.Instances[0].InstanceId)
	if mo := run.Instances[0].MetadataOptions; mo == nil || aws.ToInt32(mo.HttpPutResponseHopLimit) != 3 {
		t.Errorf("RunInstances reply MetadataOptions %+v, want hop limit 3", mo)
	}
	wantHopLimit(t, "RunInstances hop limit 3", metadataOptions(t, c, id), 3, types.HttpTokensStateRequired)

	mod := must[*ec2.ModifyInstanceMetadataOptionsOutput](t)(c.ModifyInstanceMetadataOptions(ctx(t), &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(simtest.InstanceID), HttpPutResponseHopLimit: aws.Int32(2),
	}))
	if aws.ToString(mod.InstanceId) != simtest.InstanceID || mod.InstanceMetadataOptions == nil ||
		aws.ToInt32(mod.InstanceMetadataOptions.HttpPutResponseHopLimit) != 2 {
		t.Errorf("ModifyInstanceMetadataOptions reply %+v, want the instance with hop limit 2", mod)
	}
	wantHopLimit(t, "modified to 2", metadataOptions(t, c, simtest.InstanceID), 2, types.HttpTokensStateOptional)
	// an option left out keeps its value
	must[*ec2.ModifyInstanceMetadataOptionsOutput](t)(c.ModifyInstanceMetadataOptions(ctx(t), &ec2.ModifyInstanceMetadataOptionsInput{
		InstanceId: aws.String(simtest.InstanceID), HttpTokens: types.HttpTokensStateRequired,
	}))
	wantHopLimit(t, "tokens required", metadataOptions(t, c, simtest.InstanceID), 2, types.HttpTokensStateRequired)

	for _, hops := range []int32{0, 65} {
		_, err := c.RunInstances(ctx(t), &ec2.RunInstancesInput{
			InstanceType: types.InstanceTypeM5Large, SubnetId: aws.String(simtest.NodeSubnetID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			MetadataOptions: &types.InstanceMetadataOptionsRequest{HttpPutResponseHopLimit: aws.Int32(hops)},
		})
		wantCode(t, err, "InvalidParameterValue")
		if err != nil && !strings.Contains(err.Error(), "HttpPutResponseHopLimit") {
			t.Errorf("RunInstances hop limit %d: %v, want the field named", hops, err)
		}
		_, err = c.ModifyInstanceMetadataOptions(ctx(t), &ec2.ModifyInstanceMetadataOptionsInput{
			InstanceId: aws.String(simtest.InstanceID), HttpPutResponseHopLimit: aws.Int32(hops),
		})
		wantCode(t, err, "InvalidParameterValue")
	}
	wantHopLimit(t, "after refused changes", metadataOptions(t, c, simtest.InstanceID), 2, types.HttpTokensStateRequired)

	bad := simtest.Basic()
	bad.Instances[0].IMDSHopLimit = 65
	if _, err := vpcsim.New(bad); err == nil || !strings.Contains(err.Error(), "imdsHopLimit") {
		t.Errorf("scenario imdsHopLimit 65: %v, want an error naming imdsHopLimit", err)
	}
	if _, err := vpcsim.ParseScenario([]byte("instances: [{type: m5.large, subnet: s, imdsHopLimit: 2}]")); err != nil {
		t.Errorf("scenario with imdsHopLimit: %v", err)
	}
}

// Metadata options outside EC2's values are refused naming the option, by
// RunInstances and ModifyInstanceMetadataOptions alike, and change nothing;
// before, RunInstances took HttpTokens "bogus" as optional.
func TestMetadataOptionsInvalidValuesRefused(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	c := newEC2(env.EC2URL)
	for _, tc := range []struct {
		name string
		opts types.InstanceMetadataOptionsRequest
		mod  ec2.ModifyInstanceMetadataOptionsInput
		want string
	}{
		{"HttpTokens", types.InstanceMetadataOptionsRequest{HttpTokens: "bogus"},
			ec2.ModifyInstanceMetadataOptionsInput{HttpTokens: "bogus"}, "HttpTokens"},
		{"HttpEndpoint", types.InstanceMetadataOptionsRequest{HttpEndpoint: "on"},
			ec2.ModifyInstanceMetadataOptionsInput{HttpEndpoint: "on"}, "HttpEndpoint"},
		{"HttpProtocolIpv6", types.InstanceMetadataOptionsRequest{HttpProtocolIpv6: "yes"},
			ec2.ModifyInstanceMetadataOptionsInput{HttpProtocolIpv6: "yes"}, "HttpProtocolIpv6"},
		{"InstanceMetadataTags", types.InstanceMetadataOptionsRequest{InstanceMetadataTags: "x"},
			ec2.ModifyInstanceMetadataOptionsInput{InstanceMetadataTags: "x"}, "InstanceMetadataTags"},
	} {
		before := len(must[*ec2.DescribeInstancesOutput](t)(c.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{})).Reservations)
		opts := tc.opts
		_, err := c.RunInstances(ctx(t), &ec2.RunInstancesInput{
			InstanceType: types.InstanceTypeM5Large, SubnetId: aws.String(simtest.NodeSubnetID), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			MetadataOptions: &opts,
		})
		wantCode(t, err, "InvalidParameterValue")
		if err != nil && !strings.Contains(err.Error(), "MetadataOptions."+tc.want) {
			t.Errorf("RunInstances %s: %v, want MetadataOptions.%s named", tc.name, err, tc.want)
		}
		if after := len(must[*ec2.DescribeInstancesOutput](t)(c.DescribeInstances(ctx(t), &ec2.DescribeInstancesInput{})).Reservations); after != before {
			t.Errorf("RunInstances %s refused but %d instances became %d", tc.name, before, after)
		}
		mod := tc.mod
		mod.InstanceId = aws.String(simtest.InstanceID)
		_, err = c.ModifyInstanceMetadataOptions(ctx(t), &mod)
		wantCode(t, err, "InvalidParameterValue")
		if err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ModifyInstanceMetadataOptions %s: %v, want %s named", tc.name, err, tc.want)
		}
	}
	wantHopLimit(t, "after refused changes", metadataOptions(t, c, simtest.InstanceID), 1, types.HttpTokensStateOptional)
}
