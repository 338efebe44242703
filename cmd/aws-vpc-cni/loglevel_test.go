package main

import (
	"strings"
	"testing"
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
