package main

import (
	"bytes"
	"context"
	"log/slog"
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
			var out bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&out, nil))
			lookup := func(k string) (string, bool) { v, ok := h.env[k]; return v, ok }
			if code := runWith(context.Background(), log, h.opts, lookup, noIMDS); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if !strings.Contains(out.String(), "invalid environment") || !strings.Contains(out.String(), tc.want) {
				t.Errorf("output lacks the refusal %s:\n%s", tc.want, out.String())
			}
			if _, err := os.Stat(filepath.Join(h.dir, "watched")); err == nil {
				t.Error("ipamd started despite the refusal")
			}
		})
	}
}
