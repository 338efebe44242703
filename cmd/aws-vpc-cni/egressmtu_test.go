package main

import (
	"strings"
	"testing"
)

// IPv4 cluster with ENABLE_V6_EGRESS=true: the pod MTU is also the MTU of
// egress-cni's v6if0, and IPv6 needs at least 1280 (RFC 8200). Below it
// the kernel refuses the egress address and every pod's ADD failed with
// "invalid argument"; the entrypoint now refuses the MTU, naming the
// variable it came from and ENABLE_V6_EGRESS.
func TestV6EgressNeedsIPv6MTU(t *testing.T) {
	for _, tc := range []struct {
		env     []string
		wantErr []string // nil: valid
	}{
		{[]string{"ENABLE_V6_EGRESS", "true", "POD_MTU", "1000"}, []string{"POD_MTU=1000", "ENABLE_V6_EGRESS", "1280"}},
		{[]string{"ENABLE_V6_EGRESS", "true", "AWS_VPC_ENI_MTU", "1279"}, []string{"AWS_VPC_ENI_MTU=1279", "ENABLE_V6_EGRESS", "1280"}},
		{[]string{"ENABLE_V6_EGRESS", "true", "AWS_VPC_ENI_MTU", "1000", "POD_MTU", "1280"}, nil},
		{[]string{"ENABLE_V6_EGRESS", "false", "POD_MTU", "1000"}, nil},
		{[]string{"POD_MTU", "1000"}, nil},
	} {
		_, _, err := parseConfig(env(tc.env...))
		switch {
		case tc.wantErr == nil && err != nil:
			t.Errorf("%q: %v, want it accepted", tc.env, err)
		case tc.wantErr != nil && err == nil:
			t.Errorf("%q accepted, want a refusal naming %q", tc.env, tc.wantErr)
		case tc.wantErr != nil:
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q: %q does not name %s", tc.env, err.Error(), w)
				}
			}
		}
	}
}
