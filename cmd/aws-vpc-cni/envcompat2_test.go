package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/conflist"
)

// AWS_VPC_K8S_PLUGIN_LOG_FILE set but empty: upstream's entrypoint writes
// the empty value into the conflist, and the plugin then logs to stderr
// (docs/compatibility.md, "Entrypoint and init container only"); the
// default file is only for an unset variable. The egress plugin's
// variables are read the same way.
func TestEmptyPluginLogFileReachesConflist(t *testing.T) {
	for _, ipv6 := range []string{"false", "true"} {
		egressVar := "AWS_VPC_K8S_EGRESS_V6_PLUGIN_LOG_FILE"
		if ipv6 == "true" {
			egressVar = "AWS_VPC_K8S_EGRESS_V4_PLUGIN_LOG_FILE"
		}
		cfg, warnings, err := parseConfig(env("ENABLE_IPv6", ipv6, "ENABLE_PREFIX_DELEGATION", ipv6, "WARM_PREFIX_TARGET", "1",
			"AWS_VPC_K8S_PLUGIN_LOG_FILE", "", egressVar, ""))
		if err != nil || len(warnings) > 0 {
			t.Fatalf("ENABLE_IPv6=%s: err=%v warnings=%v", ipv6, err, warnings)
		}
		cfg.Conflist.Egress.Enabled, cfg.Conflist.Egress.NodeIP = true, "10.0.0.10"
		b, err := conflist.Render(cfg.Conflist)
		if err != nil {
			t.Fatal(err)
		}
		var list struct {
			Plugins []map[string]any `json:"plugins"`
		}
		if err := json.Unmarshal(b, &list); err != nil {
			t.Fatal(err)
		}
		for _, p := range list.Plugins[:2] {
			if f, ok := p["pluginLogFile"]; !ok || f != "" {
				t.Errorf("ENABLE_IPv6=%s: %v has pluginLogFile %q (present %v), want \"\" (stderr)", ipv6, p["type"], f, ok)
			}
		}
	}
}

// POD_MTU with spaces around it: upstream's entrypoint parses it as
// written and refuses it (exit 1), as AWS_VPC_ENI_MTU.
func TestPaddedPodMTURefused(t *testing.T) {
	for _, v := range []string{" 1500", "1500\n", "  "} {
		if _, _, err := parseConfig(env("POD_MTU", v)); err == nil || !strings.Contains(err.Error(), "POD_MTU") {
			t.Errorf("POD_MTU=%q: err %v, want it refused", v, err)
		}
	}
}
