package main

import (
	"strings"
	"testing"
)

// DISABLE_POD_V6=true chains a tuning plugin writing
// net.ipv6.conf.all.disable_ipv6=1 in every pod, which removes every IPv6
// address of the pod: an IPv6 cluster's pods lose their only address, and
// with ENABLE_V6_EGRESS=true the egress ULA on v6if0 is gone right after
// egress-cni set it. Both contradictions are refused at start, naming the
// variables; DISABLE_POD_V6 alone in an IPv4 cluster stays valid.
func TestDisablePodV6Contradictions(t *testing.T) {
	for _, tc := range []struct {
		env     []string
		wantErr []string // nil: valid
	}{
		{[]string{"DISABLE_POD_V6", "true", "ENABLE_IPv6", "true", "ENABLE_PREFIX_DELEGATION", "true", "WARM_PREFIX_TARGET", "1"}, []string{"DISABLE_POD_V6", "ENABLE_IPv6"}},
		{[]string{"DISABLE_POD_V6", "true", "ENABLE_V6_EGRESS", "true"}, []string{"DISABLE_POD_V6", "ENABLE_V6_EGRESS"}},
		{[]string{"DISABLE_POD_V6", "true"}, nil},
		{[]string{"DISABLE_POD_V6", "false", "ENABLE_V6_EGRESS", "true"}, nil},
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
