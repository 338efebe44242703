package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// The EKS max-pods calculator's flags (--instance-type, --cni-version,
// --cni-custom-networking-enabled, --cni-prefix-delegation-enabled,
// --cni-max-eni) select one figure, printed alone as kubelet's
// --max-pods wants it; --cni-max-eni caps the ENIs as ipamd's MAX_ENI does
// (m5.large with MAX_ENI=2 holds 2 × 9 pod addresses). Bad values name the
// flag.
func TestCalculatorFlags(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	newSource := func(ctx context.Context, sc sourceConfig) (instanceTypes, error) {
		sc.Credentials = &awsutils.StaticCredentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}
		return newEC2Source(ctx, sc)
	}
	base := []string{"--region", env.Sim.Region(), "--ec2-endpoint", env.EC2URL}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--instance-type", "m5.large", "--cni-version", "1.23.1"}, "29"},
		{[]string{"--instance-type", "m5.large", "--cni-version", "v1.23.1-eksbuild.1", "--cni-custom-networking-enabled"}, "20"},
		{[]string{"--instance-type", "m5.large", "--cni-version", "1.23.1", "--cni-prefix-delegation-enabled"}, "110"},
		{[]string{"--instance-type", "m5.large", "--cni-version", "1.23.1", "--cni-prefix-delegation-enabled", "--cni-custom-networking-enabled"}, "110"},
		{[]string{"--instance-type", "m5.large", "--cni-version", "1.23.1", "--cni-max-eni", "2"}, "20"},
		{[]string{"--instance-type", "m5.large", "--cni-version", "1.23.1", "--cni-max-eni", "2", "--cni-custom-networking-enabled"}, "11"},
		{[]string{"--instance-type", "m5.large", "--cni-version", "1.23.1", "--cni-max-eni", "9"}, "29"}, // above the type's 3: no effect, as MAX_ENI
		{[]string{"--cni-max-eni", "2", "-mode", "secondary-ip", "m5.large"}, "20"},
		// Prefix delegation arrived in 1.9.0: an older CNI ignores it.
		{[]string{"--instance-type", "m5.large", "--cni-version", "1.8.0", "--cni-prefix-delegation-enabled"}, "29"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append(append([]string{}, base...), tt.args...), &out, &errb, newSource)
		if code != 0 || strings.TrimSpace(out.String()) != tt.want {
			t.Errorf("%q: got %q (exit %d, %s), want %s", tt.args, out.String(), code, errb.String(), tt.want)
		}
	}
	for _, tt := range []struct {
		args []string
		flag string
	}{
		{[]string{"--instance-type", "m5.large", "--cni-max-eni", "-1"}, "-cni-max-eni"},
		{[]string{"--instance-type", "m5.large", "--cni-version", "latest"}, "-cni-version"},
		{[]string{"--instance-type", "m5.large", "--cni-prefix-delegation-enabled", "-mode", "custom-networking"}, "-mode"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append(append([]string{}, base...), tt.args...), &out, &errb, newSource)
		if code != 2 || !strings.Contains(errb.String(), tt.flag) || out.Len() != 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 naming %s", tt.args, code, out.String(), errb.String(), tt.flag)
		}
	}
}
