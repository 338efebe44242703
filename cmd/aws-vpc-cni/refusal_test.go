package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstallerPrintsIpamdRefusal: a value only ipamd uses, which ipamd
// would refuse, is refused by the entrypoint before ipamd starts, and the
// reason is on the entrypoint's own output (what `kubectl logs` shows),
// naming the variable and the limit.
func TestInstallerPrintsIpamdRefusal(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"ADDITIONAL_ENI_TAGS", `{"aws:team":"a"}`, `tag key \"aws:team\" starts with \"aws:\", which EC2 reserves for AWS`},
		{"IP_COOLDOWN_PERIOD", "9223372036854775807", `IP_COOLDOWN_PERIOD=\"9223372036854775807\": above the maximum of 86400 seconds`},
		{"AWS_VPC_K8S_CNI_VETHPREFIX", "a b", `character ' ' is not allowed in an interface name`},
		{"NETWORK_POLICY_ENFORCING_MODE", "lax", `NETWORK_POLICY_ENFORCING_MODE=\"lax\": want one of none, strict, standard`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.env[tc.name] = tc.value
			_, err := h.prepared(noIMDS)
			if err == nil || !strings.Contains(err.Error(), "invalid environment") || !strings.Contains(fmt.Sprintf("%q", err.Error()), tc.want) {
				t.Errorf("refusal %v, want one naming %s", err, tc.want)
			}
			if b, _ := os.ReadFile(filepath.Join(h.bin, "aws-cni")); string(b) != "old aws-cni" {
				t.Errorf("plugin installed despite the refusal: %q", b)
			}
		})
	}
}
