package main

import (
	"strings"
	"testing"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, warnings, err := parseConfig(env())
	if err != nil || len(warnings) > 0 {
		t.Fatalf("defaults: err=%v warnings=%v", err, warnings)
	}
	c := cfg.Conflist
	if cfg.HostCNIBinPath != "/host/opt/cni/bin" || cfg.HostCNIConfDirPath != "/host/etc/cni/net.d" || cfg.SocketPath != "/var/run/aws-node/ipamd.sock" {
		t.Errorf("paths: %+v", cfg)
	}
	if c.VethPrefix != "eni" || c.MTU != 9001 || c.PodSGEnforcingMode != "strict" || c.PluginLogLevel != "Debug" ||
		c.PluginLogFile != "/var/log/aws-routed-eni/plugin.log" {
		t.Errorf("conflist defaults: %+v", c)
	}
	if cfg.IPv6Cluster || cfg.EgressEnabled || c.Egress == nil || c.Egress.RandomizeSNAT != "prng" ||
		c.Egress.LogFile != "/var/log/aws-routed-eni/egress-v6-plugin.log" || c.Bandwidth || c.DisablePodIPv6 {
		t.Errorf("egress defaults: %+v %+v", cfg, c.Egress)
	}
	// POD_MTU follows AWS_VPC_ENI_MTU.
	cfg, _, _ = parseConfig(env("AWS_VPC_ENI_MTU", "1500"))
	if cfg.Conflist.MTU != 1500 {
		t.Errorf("POD_MTU default = %d, want AWS_VPC_ENI_MTU 1500", cfg.Conflist.MTU)
	}
	// IPv6 cluster: IPv4 egress on by default, its own log file.
	cfg, _, _ = parseConfig(env("ENABLE_IPv6", "true", "ENABLE_PREFIX_DELEGATION", "true", "WARM_PREFIX_TARGET", "1"))
	if !cfg.IPv6Cluster || !cfg.EgressEnabled || cfg.Conflist.Egress.LogFile != "/var/log/aws-routed-eni/egress-v4-plugin.log" {
		t.Errorf("IPv6 cluster: %+v %+v", cfg, cfg.Conflist.Egress)
	}
}

// Every check of upstream's entrypoint (exit 1), with errors that name
// the variable and its value.
func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		wantErr string // "" = valid
	}{
		{"plugin log to stdout", []string{"AWS_VPC_K8S_PLUGIN_LOG_FILE", "stdout"}, `AWS_VPC_K8S_PLUGIN_LOG_FILE="stdout"`},
		{"plugin log to stderr", []string{"AWS_VPC_K8S_PLUGIN_LOG_FILE", "stderr"}, ""},
		// The same stdout by path: the plugin opens it as a file and its
		// log lines land in front of its CNI result.
		{"plugin log to /dev/stdout", []string{"AWS_VPC_K8S_PLUGIN_LOG_FILE", "/dev/stdout"}, `AWS_VPC_K8S_PLUGIN_LOG_FILE="/dev/stdout"`},
		{"plugin log to fd 1", []string{"AWS_VPC_K8S_PLUGIN_LOG_FILE", "/proc/self/fd/1"}, `AWS_VPC_K8S_PLUGIN_LOG_FILE="/proc/self/fd/1"`},
		{"plugin log to /dev/fd/1", []string{"AWS_VPC_K8S_PLUGIN_LOG_FILE", "/dev/fd/1"}, `AWS_VPC_K8S_PLUGIN_LOG_FILE="/dev/fd/1"`},
		{"plugin log to /dev/stderr", []string{"AWS_VPC_K8S_PLUGIN_LOG_FILE", "/dev/stderr"}, ""},
		{"egress v6 log to /dev/stdout", []string{"AWS_VPC_K8S_EGRESS_V6_PLUGIN_LOG_FILE", "/dev/stdout"}, `AWS_VPC_K8S_EGRESS_V6_PLUGIN_LOG_FILE="/dev/stdout"`},
		{"egress v4 log to /dev/stdout", []string{"ENABLE_IPv6", "true", "ENABLE_PREFIX_DELEGATION", "true", "AWS_VPC_K8S_EGRESS_V4_PLUGIN_LOG_FILE", "/dev/stdout"}, `AWS_VPC_K8S_EGRESS_V4_PLUGIN_LOG_FILE="/dev/stdout"`},
		{"veth prefix too long", []string{"AWS_VPC_K8S_CNI_VETHPREFIX", "abcde"}, `AWS_VPC_K8S_CNI_VETHPREFIX="abcde": veth prefix "abcde": 5 characters, at most 4`},
		{"veth prefix eth", []string{"AWS_VPC_K8S_CNI_VETHPREFIX", "eth"}, `AWS_VPC_K8S_CNI_VETHPREFIX="eth": veth prefix "eth": reserved`},
		{"veth prefix vlan", []string{"AWS_VPC_K8S_CNI_VETHPREFIX", "vlan"}, "reserved"},
		{"veth prefix empty", []string{"AWS_VPC_K8S_CNI_VETHPREFIX", ""}, `AWS_VPC_K8S_CNI_VETHPREFIX="": veth prefix "": must not be empty`},
		{"veth prefix space", []string{"AWS_VPC_K8S_CNI_VETHPREFIX", "a b"}, `AWS_VPC_K8S_CNI_VETHPREFIX="a b": veth prefix "a b": character ' ' is not allowed`},
		{"veth prefix slash", []string{"AWS_VPC_K8S_CNI_VETHPREFIX", "a/b"}, `AWS_VPC_K8S_CNI_VETHPREFIX="a/b": veth prefix "a/b": character '/' is not allowed`},
		{"veth prefix 4 chars", []string{"AWS_VPC_K8S_CNI_VETHPREFIX", "abcd"}, ""},
		{"bad SG mode with pod ENI", []string{"ENABLE_POD_ENI", "true", "POD_SECURITY_GROUP_ENFORCING_MODE", "loose"}, `POD_SECURITY_GROUP_ENFORCING_MODE="loose"`},
		{"cooldown negative", []string{"IP_COOLDOWN_PERIOD", "-1"}, `IP_COOLDOWN_PERIOD="-1": must not be negative`},
		{"cooldown overflow", []string{"IP_COOLDOWN_PERIOD", "9223372036854775807"}, `IP_COOLDOWN_PERIOD="9223372036854775807": above the maximum of 86400 seconds`},
		{"cooldown not a number", []string{"IP_COOLDOWN_PERIOD", "30s"}, `IP_COOLDOWN_PERIOD="30s": not a whole number of seconds`},
		{"cooldown zero", []string{"IP_COOLDOWN_PERIOD", "0"}, ""},
		{"ENI MTU too small", []string{"AWS_VPC_ENI_MTU", "500"}, `AWS_VPC_ENI_MTU=500: must be within 576–9001`},
		{"pod MTU too big", []string{"POD_MTU", "9002"}, `POD_MTU=9002: must be within 576–9001`},
		{"pod MTU text", []string{"POD_MTU", "jumbo"}, `POD_MTU="jumbo": not an integer`},
		// ipamd-only refusals show on the entrypoint's output too.
		{"ipamd tag refusal", []string{"ADDITIONAL_ENI_TAGS", `{"aws:x":"y"}`}, `ADDITIONAL_ENI_TAGS: tag key "aws:x" starts with "aws:"`},
		{"ipamd policy mode refusal", []string{"NETWORK_POLICY_ENFORCING_MODE", "lax"}, `NETWORK_POLICY_ENFORCING_MODE="lax"`},
		{"IPv6 MTU below 1280", []string{"ENABLE_IPv6", "true", "POD_MTU", "1000", "ENABLE_PREFIX_DELEGATION", "true", "WARM_PREFIX_TARGET", "1"}, `POD_MTU=1000: must be within 1280–9001`},
		{"IPv4 MTU 1000", []string{"POD_MTU", "1000"}, ""},
		{"PD without targets", []string{"ENABLE_PREFIX_DELEGATION", "true"}, "needs one of WARM_IP_TARGET, WARM_PREFIX_TARGET or MINIMUM_IP_TARGET above 0"},
		{"PD with zero targets", []string{"ENABLE_PREFIX_DELEGATION", "true", "WARM_PREFIX_TARGET", "0", "WARM_IP_TARGET", "0"}, "above 0"},
		// Upstream's lexical comparison accepted these: "00" > "0" and "-1" > "0" as strings.
		{"PD with target 00", []string{"ENABLE_PREFIX_DELEGATION", "true", "WARM_PREFIX_TARGET", "00"}, "above 0"},
		{"PD with target -1", []string{"ENABLE_PREFIX_DELEGATION", "true", "MINIMUM_IP_TARGET", "-1"}, "above 0"},
		// A non-number target falls back to 0 with a warning, as ipamd does.
		{"PD with non-number target", []string{"ENABLE_PREFIX_DELEGATION", "true", "WARM_IP_TARGET", "five", "WARM_PREFIX_TARGET", "1"}, ""},
		{"PD with only a non-number target", []string{"ENABLE_PREFIX_DELEGATION", "true", "WARM_IP_TARGET", "five"}, "above 0"},
		{"PD with warm prefix 1", []string{"ENABLE_PREFIX_DELEGATION", "true", "WARM_PREFIX_TARGET", "1"}, ""},
		{"PD with minimum 10", []string{"ENABLE_PREFIX_DELEGATION", "true", "MINIMUM_IP_TARGET", "10", "WARM_PREFIX_TARGET", "0"}, ""},
		{"targets ignored without PD", []string{"WARM_PREFIX_TARGET", "00"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseConfig(env(tt.env...))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("want valid, got %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("want an error containing %q, got none", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
	// All errors are reported at once.
	_, _, err := parseConfig(env("AWS_VPC_K8S_PLUGIN_LOG_FILE", "stdout", "IP_COOLDOWN_PERIOD", "x"))
	if err == nil || !strings.Contains(err.Error(), "PLUGIN_LOG_FILE") || !strings.Contains(err.Error(), "IP_COOLDOWN_PERIOD") {
		t.Errorf("joined errors: %v", err)
	}
}

// Values upstream silently replaces are replaced too, but with a warning
// naming the variable and value.
func TestParseConfigWarnings(t *testing.T) {
	cfg, warnings, err := parseConfig(env(
		"ENABLE_BANDWIDTH_PLUGIN", "yes",
		"AWS_VPC_K8S_CNI_RANDOMIZESNAT", "random",
		"POD_SECURITY_GROUP_ENFORCING_MODE", "loose",
		"DISABLE_POD_V6", "true",
	))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`ENABLE_BANDWIDTH_PLUGIN="yes" is not a boolean`, `AWS_VPC_K8S_CNI_RANDOMIZESNAT="random"`, `POD_SECURITY_GROUP_ENFORCING_MODE="loose"`}
	joined := strings.Join(warnings, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("warnings %q lack %q", joined, w)
		}
	}
	c := cfg.Conflist
	if c.Bandwidth || c.Egress.RandomizeSNAT != "prng" || c.PodSGEnforcingMode != "strict" || !c.DisablePodIPv6 {
		t.Errorf("fallbacks: %+v %+v", c, c.Egress)
	}
}
