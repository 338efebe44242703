package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// simSource reads instance types from vpcsim's EC2 (test credentials).
func simSource(ctx context.Context, sc sourceConfig) (instanceTypes, error) {
	sc.Credentials = &awsutils.StaticCredentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}
	return newEC2Source(ctx, sc)
}

// Limits read from DescribeInstanceTypes, answered by vpcsim over HTTP.
func TestRunAgainstVPCSim(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	newSource := simSource
	run1 := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb, newSource)
		return out.String(), errb.String(), code
	}
	base := []string{"-region", env.Sim.Region(), "-ec2-endpoint", env.EC2URL}

	out, errs, code := run1(append(base, "-vcpus", "2", "m5.large")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rows []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		rows = append(rows, strings.Join(strings.Fields(line), " "))
	}
	want := []string{
		"INSTANCE TYPE MODE MAX PODS",
		"m5.large secondary-ip 29",
		"m5.large prefix-delegation 110",
		"m5.large custom-networking 20",
		"m5.large custom-networking+prefix-delegation 110",
	}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}

	for _, tt := range []struct {
		typ, mode, want string
	}{
		{"t3.medium", "secondary-ip", "17"},
		{"m5.xlarge", "secondary-ip", "58"},
		{"c5.4xlarge", "secondary-ip", "234"},
		{"c5.xlarge", "custom-networking", "44"},
		{"p4d.24xlarge", "secondary-ip", "737"},
	} {
		out, errs, code := run1(append(base, "-mode", tt.mode, tt.typ)...)
		if code != 0 || strings.TrimSpace(out) != tt.want {
			t.Errorf("%s %s: got %q (exit %d, %s), want %s", tt.typ, tt.mode, out, code, errs, tt.want)
		}
	}

	// Errors name their cause.
	if _, errs, code := run1(append(base, "-mode", "secondary-ip", "x9.huge")...); code != 1 || !strings.Contains(errs, "x9.huge") {
		t.Errorf("unknown type: exit %d, %q", code, errs)
	}
	// The prefix-delegation cap follows the vCPUs EC2 reports: 110 below 30.
	for typ, want := range map[string]string{"m5.large": "110", "m5.24xlarge": "250"} {
		if out, errs, code := run1(append(base, "-mode", "prefix-delegation", typ)...); code != 0 || strings.TrimSpace(out) != want {
			t.Errorf("%s prefix-delegation: got %q (exit %d, %s), want %s", typ, out, code, errs, want)
		}
	}
	if _, errs, code := run1("-cap", "lots", "m5.large"); code != 2 || !strings.Contains(errs, `-cap "lots"`) {
		t.Errorf("bad cap: exit %d, %q", code, errs)
	}
	if _, _, code := run1(); code != 2 {
		t.Errorf("no type: exit %d", code)
	}
}

func TestRunManualLimits(t *testing.T) {
	var out, errb bytes.Buffer
	noEC2 := func(context.Context, sourceConfig) (instanceTypes, error) {
		t.Fatal("EC2 used although limits were given")
		return nil, nil
	}
	code := run(context.Background(), []string{"-enis", "3", "-ipv4-per-eni", "10", "-mode", "custom-networking", "m5.large"}, &out, &errb, noEC2)
	if code != 0 || strings.TrimSpace(out.String()) != "20" {
		t.Errorf("got %q exit %d: %s", out.String(), code, errb.String())
	}
}

// ipamd uses secondary IPs when ENABLE_PREFIX_DELEGATION=true on an instance
// type with no prefixes (not Nitro, not bare metal; docs/compatibility.md,
// ENABLE_PREFIX_DELEGATION), so the prefix-delegation figures for such a type
// are the secondary-IP ones: m4.large (xen, 2 ENIs × 10) runs 20 pods, and a
// kubelet told 110 leaves 90 pods without an address.
func TestPrefixDelegationFiguresOnTypesWithoutPrefixes(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	newSource := simSource
	for _, tt := range []struct{ typ, mode, want string }{
		{"m4.large", "prefix-delegation", "20"},
		{"m4.large", "custom-networking+prefix-delegation", "11"},
		{"m4.large", "secondary-ip", "20"},
		{"m5.large", "prefix-delegation", "110"}, // Nitro: prefixes
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"-region", env.Sim.Region(), "-ec2-endpoint", env.EC2URL, "-mode", tt.mode, tt.typ}, &out, &errb, newSource)
		if code != 0 || strings.TrimSpace(out.String()) != tt.want {
			t.Errorf("%s %s: got %q (exit %d, %s), want %s", tt.typ, tt.mode, out.String(), code, errb.String(), tt.want)
		}
	}
}

// A bad -enis, -ipv4-per-eni or -vcpus is refused naming the flag, not
// ignored (a negative -enis used to fall through to EC2) nor reported as
// an internal limit.
func TestBadLimitFlagsNamed(t *testing.T) {
	noEC2 := func(context.Context, sourceConfig) (instanceTypes, error) {
		return nil, errors.New("EC2 used although a limit flag was given")
	}
	for _, tt := range []struct {
		args []string
		flag string
	}{
		{[]string{"-enis", "-1", "m5.large"}, "-enis"},
		{[]string{"-ipv4-per-eni", "-10", "m5.large"}, "-ipv4-per-eni"},
		{[]string{"-enis", "3", "m5.large"}, "-ipv4-per-eni"},
		{[]string{"-ipv4-per-eni", "10", "m5.large"}, "-enis"},
		{[]string{"-enis", "3", "-ipv4-per-eni", "10", "-vcpus", "-2", "m5.large"}, "-vcpus"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), tt.args, &out, &errb, noEC2)
		if code != 2 || !strings.Contains(errb.String(), tt.flag) || out.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 naming %s", tt.args, code, out.String(), errb.String(), tt.flag)
		}
	}
}

// Without -region or AWS_REGION, an EC2 lookup is refused naming both
// (it failed with awsutils' "Config.Region is empty and no instance
// metadata client was given").
func TestNoRegionNamed(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"m5.large"}, &out, &errb, newEC2Source)
	if code != 2 || !strings.Contains(errb.String(), "-region") || !strings.Contains(errb.String(), "AWS_REGION") {
		t.Errorf("exit %d, stderr %q; want exit 2 naming -region and AWS_REGION", code, errb.String())
	}
}
