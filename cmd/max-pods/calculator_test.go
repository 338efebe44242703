package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

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
	newSource := simSource
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

// The calculator's --instance-type-from-imds reads the node's instance type
// (and, lacking -region, its region) from instance metadata, and
// --show-max-allowed prints the prefix-delegation figure without the cap
// (m5.large: 3 × 9 × 16 + 2 = 434, not 110). Before, both were refused as
// unknown flags, so a bootstrap script passing them got no figure.
func TestCalculatorIMDSAndShowMaxAllowed(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	env := simtest.Start(t, simtest.Basic())
	newSource := simSource
	imds := []string{"--ec2-endpoint", env.EC2URL, "--imds-endpoint", env.IMDSURL(simtest.InstanceID)}
	run1 := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, &out, &errb, newSource)
		return out.String(), errb.String(), code
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{append([]string{"--instance-type-from-imds", "--cni-version", "1.23.1"}, imds...), "29"},
		{append([]string{"--instance-type-from-imds", "--cni-version", "1.23.1", "--cni-custom-networking-enabled"}, imds...), "20"},
		{append([]string{"--instance-type-from-imds", "--cni-version", "1.23.1", "--cni-prefix-delegation-enabled"}, imds...), "110"},
		{append([]string{"--instance-type-from-imds", "--cni-version", "1.23.1", "--cni-prefix-delegation-enabled", "--show-max-allowed"}, imds...), "434"},
		{[]string{"--region", env.Sim.Region(), "--ec2-endpoint", env.EC2URL, "--instance-type", "m5.large", "--cni-prefix-delegation-enabled", "--show-max-allowed"}, "434"},
		{[]string{"--region", env.Sim.Region(), "--ec2-endpoint", env.EC2URL, "--instance-type", "m5.large", "--show-max-allowed"}, "29"},
	} {
		out, errs, code := run1(tt.args...)
		if code != 0 || strings.TrimSpace(out) != tt.want {
			t.Errorf("%q: got %q (exit %d, %s), want %s", tt.args, out, code, errs, tt.want)
		}
	}

	noMetadata := httptest.NewServer(http.NotFoundHandler())
	defer noMetadata.Close()
	for _, tt := range []struct {
		args []string
		code int
		flag string
	}{
		{append([]string{"--instance-type-from-imds", "m5.large"}, imds...), 2, "--instance-type-from-imds"},
		{append([]string{"--instance-type-from-imds", "--instance-type", "m5.large"}, imds...), 2, "--instance-type-from-imds"},
		{append([]string{"--instance-type", "m5.large", "--show-max-allowed", "-cap", "200"}, imds...), 2, "--show-max-allowed"},
		{[]string{"--instance-type-from-imds", "--imds-endpoint", noMetadata.URL}, 1, "--instance-type-from-imds"},
		{[]string{"--instance-type-from-imds", "--imds-endpoint", "::bad"}, 1, "-imds-endpoint"},
	} {
		out, errs, code := run1(tt.args...)
		if code != tt.code || !strings.Contains(errs, tt.flag) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d naming %s", tt.args, code, out, errs, tt.code, tt.flag)
		}
	}
}

// --instance-type-from-imds on an IPv6-only node, whose metadata has no
// local-ipv4, gives the figure: it reads the instance type (and, lacking
// -region, the region) alone. Before, it failed reading local-ipv4, which
// the figure does not need.
func TestCalculatorIMDSWithoutLocalIPv4(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	env := simtest.Start(t, simtest.Basic())
	sim, err := env.Sim.IMDSHandler(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	ipv6Only := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/meta-data/local-ipv4") {
			http.NotFound(w, r)
			return
		}
		sim.ServeHTTP(w, r)
	}))
	defer ipv6Only.Close()
	imds := []string{"--instance-type-from-imds", "--ec2-endpoint", env.EC2URL, "--imds-endpoint", ipv6Only.URL, "--cni-version", "1.23.1"}
	for _, args := range [][]string{imds, append([]string{"--region", env.Sim.Region()}, imds...)} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb, simSource); code != 0 || strings.TrimSpace(out.String()) != "29" {
			t.Errorf("%q: got %q (exit %d, %s), want 29 (m5.large)", args, out.String(), code, errb.String())
		}
	}
}
