package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/conflist"
)

// An AWS_VPC_K8S_PLUGIN_LOG_LEVEL the plugins do not know makes them log
// at debug, as upstream's do; the entrypoint now says so with a warning
// naming the variable (it said nothing), and still writes the value as
// given into the conflist, as upstream's entrypoint does.
func TestUnknownPluginLogLevelWarns(t *testing.T) {
	for _, tc := range []struct {
		value string
		warn  bool
	}{{"verbose", true}, {"TRACE", true}, {"Debug", false}, {"INFO", false}, {"warning", false}, {"error", false}, {"fatal", false}} {
		cfg, warnings, err := parseConfig(env("AWS_VPC_K8S_PLUGIN_LOG_LEVEL", tc.value))
		if err != nil {
			t.Fatalf("%s: %v", tc.value, err)
		}
		named := strings.Contains(strings.Join(warnings, "\n"), `AWS_VPC_K8S_PLUGIN_LOG_LEVEL="`+tc.value+`"`)
		if named != tc.warn {
			t.Errorf("%s: warnings %q, want a warning naming the variable: %v", tc.value, warnings, tc.warn)
		}
		if cfg.Conflist.PluginLogLevel != tc.value {
			t.Errorf("%s: conflist pluginLogLevel %q, want it as given", tc.value, cfg.Conflist.PluginLogLevel)
		}
	}
}

// AWS_VPC_K8S_PLUGIN_LOG_LEVEL set but empty: upstream's entrypoint writes
// "" into the conflist (both plugins then log at debug); ours wrote
// "Debug". Only an unset variable gets the default.
func TestEmptyPluginLogLevelWrittenEmpty(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want string
	}{{[]string{"AWS_VPC_K8S_PLUGIN_LOG_LEVEL", ""}, ""}, {nil, "Debug"}} {
		cfg, warnings, err := parseConfig(env(tc.env...))
		if err != nil || len(warnings) > 0 {
			t.Fatalf("%q: err=%v warnings=%q", tc.env, err, warnings)
		}
		cfg.Conflist.Egress.Enabled, cfg.Conflist.Egress.NodeIP = true, "2001:db8::10"
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
			if l, ok := p["pluginLogLevel"]; !ok || l != tc.want {
				t.Errorf("%q: %v has pluginLogLevel %q (present %v), want %q", tc.env, p["type"], l, ok, tc.want)
			}
		}
	}
}
