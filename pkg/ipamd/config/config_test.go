package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestLoadDefaults(t *testing.T) {
	c, warns, err := Load(env(nil))
	if err != nil {
		t.Fatalf("Load with no variables: %v", err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	if diff := cmp.Diff(Defaults(), c); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	if !c.EnableIPv4 || c.EnableIPv6 || c.WarmENITarget != 1 || c.MaxENI != -1 || c.IPCooldown != 30*time.Second ||
		c.SocketPath != "/var/run/aws-node/ipamd.sock" || c.BackingStore != "/var/run/aws-node/ipam.json" ||
		c.MetricsAddr != ":61678" || c.IntrospectionAddr != "127.0.0.1:61679" {
		t.Errorf("unexpected defaults: %+v", c)
	}
}

func TestLoadValues(t *testing.T) {
	c, warns, err := Load(env(map[string]string{
		"WARM_IP_TARGET":                     "5",
		"MINIMUM_IP_TARGET":                  "10",
		"MAX_ENI":                            "0",
		"ENABLE_PREFIX_DELEGATION":           "TRUE",
		"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "10.1.2.3/16, 192.168.0.0/24",
		"AWS_VPC_K8S_CNI_CONNMARK":           "0x100",
		"ADDITIONAL_ENI_TAGS":                `{"team":"a","k8s.amazonaws.com/x":"y"}`,
		"NETWORK_POLICY_ENFORCING_MODE":      "Standard",
		"HTTP_TIMEOUT":                       "3",
		"IP_COOLDOWN_PERIOD":                 "0",
		"ENABLE_IMDS_ONLY_MODE":              "1",
		"VPC_CNI_IPAMD_SOCKET":               "/tmp/x.sock",
		"AWS_VPC_K8S_CNI_BACKING_STORE":      "/tmp/ipam.json",
		"KUBECONFIG":                         "/tmp/kubeconfig",
		"VPC_CNI_METRICS_ADDR":               "127.0.0.1:0",
		"INTROSPECTION_BIND_ADDRESS":         "unix:/tmp/introspect.sock",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.WarmIPTarget != 5 || c.MinimumIPTarget != 10 || c.MaxENI != -1 || !c.EnablePrefixDelegation {
		t.Errorf("targets: %+v", c)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("192.168.0.0/24")}
	if diff := cmp.Diff(want, c.ExcludeSNATCIDRs, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Error(diff)
	}
	if c.Connmark != 0x100 || c.NetworkPolicyEnforcingMode != "standard" || c.HTTPTimeout != 10*time.Second || c.IPCooldown != 0 {
		t.Errorf("values: %+v", c)
	}
	if c.Kubeconfig != "/tmp/kubeconfig" || c.MetricsAddr != "127.0.0.1:0" || c.IntrospectionAddr != "unix:/tmp/introspect.sock" {
		t.Errorf("servers and kubeconfig: %q %q %q", c.Kubeconfig, c.MetricsAddr, c.IntrospectionAddr)
	}
	if diff := cmp.Diff(map[string]string{"team": "a"}, c.AdditionalENITags); diff != "" {
		t.Error(diff)
	}
	if !c.DisableProvisioning || !c.DisableLeakedENICleanup {
		t.Error("ENABLE_IMDS_ONLY_MODE must imply no provisioning and no leaked-ENI cleanup")
	}
	wantWarns := []string{
		`ADDITIONAL_ENI_TAGS: tag key "k8s.amazonaws.com/x" is reserved (contains k8s.amazonaws.com); dropped`,
		`HTTP_TIMEOUT="3": below the minimum of 10 seconds; using 10`,
	}
	if diff := cmp.Diff(wantWarns, warns); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	if c.BackingStore != "/tmp/ipam.json" {
		t.Errorf("backing store: %s", c.BackingStore)
	}
}

func TestLoadRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // substrings that must all appear in the error
	}{
		{"no family", map[string]string{"ENABLE_IPv4": "false"}, []string{"ENABLE_IPv4=false and ENABLE_IPv6=false"}},
		{"v6 without pd", map[string]string{"ENABLE_IPv6": "true"}, []string{"requires ENABLE_PREFIX_DELEGATION"}},
		{"v6 with custom networking", map[string]string{"ENABLE_IPv4": "false", "ENABLE_IPv6": "true", "ENABLE_PREFIX_DELEGATION": "true", "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": "true"}, []string{"CUSTOM_NETWORK_CFG"}},
		{"pd all zero", map[string]string{"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "00", "WARM_IP_TARGET": "0"}, []string{"ENABLE_PREFIX_DELEGATION=true needs one of"}},
		{"np mode", map[string]string{"NETWORK_POLICY_ENFORCING_MODE": "lax"}, []string{`NETWORK_POLICY_ENFORCING_MODE="lax"`, "none, strict, standard"}},
		{"sg mode with pod ENIs", map[string]string{"ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "loose"}, []string{`POD_SECURITY_GROUP_ENFORCING_MODE="loose"`, "ENABLE_POD_ENI=true"}},
		{"both families explicitly", map[string]string{"ENABLE_IPv4": "true", "ENABLE_IPv6": "true", "ENABLE_PREFIX_DELEGATION": "true"}, []string{"ENABLE_IPv4=true and ENABLE_IPv6=true"}},
		{"pd with only bad targets", map[string]string{"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "x"}, []string{"ENABLE_PREFIX_DELEGATION=true needs one of"}},
		{"max pods (test-only)", map[string]string{"VPC_CNI_MAX_PODS": "-3"}, []string{`VPC_CNI_MAX_PODS="-3"`}},
		{"veth prefix long", map[string]string{"AWS_VPC_K8S_CNI_VETHPREFIX": "abcde"}, []string{`AWS_VPC_K8S_CNI_VETHPREFIX="abcde"`}},
		{"veth prefix eth", map[string]string{"AWS_VPC_K8S_CNI_VETHPREFIX": "eth"}, []string{`"eth"`}},
		{"mtu low", map[string]string{"AWS_VPC_ENI_MTU": "500"}, []string{"AWS_VPC_ENI_MTU=500"}},
		{"mtu text", map[string]string{"AWS_VPC_ENI_MTU": "jumbo"}, []string{`AWS_VPC_ENI_MTU="jumbo"`}},
		{"several at once", map[string]string{"AWS_VPC_ENI_MTU": "x", "AWS_VPC_K8S_CNI_VETHPREFIX": "vlan"}, []string{"AWS_VPC_ENI_MTU", "AWS_VPC_K8S_CNI_VETHPREFIX"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load(env(tc.env))
			if err == nil {
				t.Fatalf("Load(%v) succeeded, want an error", tc.env)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestPrefixDelegationNumericTargets(t *testing.T) {
	// Upstream compared strings against "0"; "01" must count as 1 here.
	if _, _, err := Load(env(map[string]string{"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "01"})); err != nil {
		t.Errorf("WARM_PREFIX_TARGET=01 with PD: %v", err)
	}
	// An IPv6 node with PD needs no IPv4 warm target.
	if _, _, err := Load(env(map[string]string{"ENABLE_IPv4": "false", "ENABLE_IPv6": "true", "ENABLE_PREFIX_DELEGATION": "true"})); err != nil {
		t.Errorf("IPv6 with PD: %v", err)
	}
}

// TestLoadFallsBackLikeUpstream: a value upstream's ipamd replaces with a
// fallback starts (an image swap of a working DaemonSet must not
// crash-loop), with one warning naming the variable, the value and the
// value used.
func TestLoadFallsBackLikeUpstream(t *testing.T) {
	cidr := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range s {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		env   map[string]string
		warn  string
		check func(Config) bool
	}{
		{"bool garbage", map[string]string{"ENABLE_POD_ENI": "yes please"},
			`ENABLE_POD_ENI="yes please": not a boolean (want true or false); using false`, func(c Config) bool { return !c.EnablePodENI }},
		{"bool garbage, default true", map[string]string{"ENABLE_SUBNET_DISCOVERY": "nope"},
			`ENABLE_SUBNET_DISCOVERY="nope": not a boolean (want true or false); using true`, func(c Config) bool { return c.EnableSubnetDiscovery }},
		{"warm eni not int", map[string]string{"WARM_ENI_TARGET": "one"},
			`WARM_ENI_TARGET="one": not an integer; using 1`, func(c Config) bool { return c.WarmENITarget == 1 }},
		{"warm eni negative", map[string]string{"WARM_ENI_TARGET": "-2"},
			`WARM_ENI_TARGET="-2": must not be negative; using 1`, func(c Config) bool { return c.WarmENITarget == 1 }},
		{"warm ip negative", map[string]string{"WARM_IP_TARGET": "-1"},
			`WARM_IP_TARGET="-1": must not be negative; using 0`, func(c Config) bool { return c.WarmIPTarget == 0 }},
		{"minimum ip not int", map[string]string{"MINIMUM_IP_TARGET": "ten"},
			`MINIMUM_IP_TARGET="ten": not an integer; using 0`, func(c Config) bool { return c.MinimumIPTarget == 0 }},
		{"warm prefix negative", map[string]string{"WARM_PREFIX_TARGET": "-1"},
			`WARM_PREFIX_TARGET="-1": must not be negative; using 0`, func(c Config) bool { return c.WarmPrefixTarget == 0 }},
		{"max eni not int", map[string]string{"MAX_ENI": "4.5"},
			`MAX_ENI="4.5": not an integer; using unset (the instance type's limit)`, func(c Config) bool { return c.MaxENI == -1 }},
		{"log level", map[string]string{"AWS_VPC_K8S_CNI_LOGLEVEL": "verbose"},
			`AWS_VPC_K8S_CNI_LOGLEVEL="verbose": want one of debug, info, warn, error, fatal; using debug`, func(c Config) bool { return c.LogLevel == "debug" }},
		{"snat cidr garbage", map[string]string{"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "10.0.0.0/8,banana"},
			`AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS="10.0.0.0/8,banana": entry "banana" is not an IPv4 CIDR; skipped`,
			func(c Config) bool { return slices.Equal(c.ExcludeSNATCIDRs, cidr("10.0.0.0/8")) }},
		{"snat cidr v6", map[string]string{"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "fd00::/8, 192.168.1.0/24"},
			`AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS="fd00::/8, 192.168.1.0/24": entry "fd00::/8" is not an IPv4 CIDR; skipped`,
			func(c Config) bool { return slices.Equal(c.ExcludeSNATCIDRs, cidr("192.168.1.0/24")) }},
		{"service cidr", map[string]string{"AWS_EXTERNAL_SERVICE_CIDRS": "1.2.3.4"},
			`AWS_EXTERNAL_SERVICE_CIDRS="1.2.3.4": entry "1.2.3.4" is not an IPv4 CIDR; skipped`,
			func(c Config) bool { return len(c.ExternalServiceCIDRs) == 0 }},
		{"tags json", map[string]string{"ADDITIONAL_ENI_TAGS": "{team:a}"},
			`ADDITIONAL_ENI_TAGS="{team:a}": not a JSON object of string values (invalid character 't' looking for beginning of object key string); ignored`,
			func(c Config) bool { return len(c.AdditionalENITags) == 0 }},
		{"sg mode without pod ENIs", map[string]string{"POD_SECURITY_GROUP_ENFORCING_MODE": "loose"},
			`POD_SECURITY_GROUP_ENFORCING_MODE="loose": want strict or standard; using strict`,
			func(c Config) bool { return c.PodSGEnforcingMode == "strict" }},
		{"randomize", map[string]string{"AWS_VPC_K8S_CNI_RANDOMIZESNAT": "random"},
			`AWS_VPC_K8S_CNI_RANDOMIZESNAT="random": want one of prng, hashrandom, none; using prng`,
			func(c Config) bool { return c.RandomizeSNAT == "prng" }},
		{"connmark zero", map[string]string{"AWS_VPC_K8S_CNI_CONNMARK": "0"},
			`AWS_VPC_K8S_CNI_CONNMARK="0": want an integer mark in 1…0xffffffff (0x prefix allowed); using 0x80`,
			func(c Config) bool { return c.Connmark == 0x80 }},
		{"connmark huge", map[string]string{"AWS_VPC_K8S_CNI_CONNMARK": "0x100000000"},
			`AWS_VPC_K8S_CNI_CONNMARK="0x100000000": want an integer mark in 1…0xffffffff (0x prefix allowed); using 0x80`,
			func(c Config) bool { return c.Connmark == 0x80 }},
		{"http timeout", map[string]string{"HTTP_TIMEOUT": "ten"},
			`HTTP_TIMEOUT="ten": not an integer number of seconds; using 10`, func(c Config) bool { return c.HTTPTimeout == 10*time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, warns, err := Load(env(tc.env))
			if err != nil {
				t.Fatalf("Load(%v): %v, want a warning and upstream's fallback", tc.env, err)
			}
			if diff := cmp.Diff([]string{tc.warn}, warns); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			if !tc.check(c) {
				t.Errorf("Load(%v) did not use upstream's fallback: %+v", tc.env, c)
			}
		})
	}
}

// TestAddressFamilyDefault: ENABLE_IPv4 absent follows ENABLE_IPv6, so
// ENABLE_IPv6=true alone (with prefix delegation) runs IPv6.
func TestAddressFamilyDefault(t *testing.T) {
	c, warns, err := Load(env(map[string]string{"ENABLE_IPv6": "true", "ENABLE_PREFIX_DELEGATION": "true"}))
	if err != nil || len(warns) != 0 {
		t.Fatalf("ENABLE_IPv6=true alone: %v %q", err, warns)
	}
	if c.EnableIPv4 || !c.EnableIPv6 {
		t.Errorf("families: IPv4 %v IPv6 %v, want IPv6 only", c.EnableIPv4, c.EnableIPv6)
	}
	if c, _, err := Load(env(map[string]string{"ENABLE_IPv6": "false"})); err != nil || !c.EnableIPv4 {
		t.Errorf("ENABLE_IPv6=false alone: IPv4 %v %v, want IPv4", c.EnableIPv4, err)
	}
}

// Every variable named by an env tag sets its field: a bool away from its default, a
// string to the value given, and ",nonempty" keeps the default when empty.
func TestPlainVariablesSetTheirFields(t *testing.T) {
	typ := reflect.TypeFor[Config]()
	n := 0
	for _, f := range reflect.VisibleFields(typ) {
		tag, ok := f.Tag.Lookup("env")
		if !ok {
			continue
		}
		n++
		name, opt, _ := strings.Cut(tag, ",")
		set := "/x"
		if f.Type.Kind() == reflect.Bool {
			set = strconv.FormatBool(!reflect.ValueOf(Defaults()).FieldByIndex(f.Index).Bool())
		}
		c, _, _ := Load(env(map[string]string{name: set}))
		if got := reflect.ValueOf(c).FieldByIndex(f.Index); fmt.Sprint(got) != set {
			t.Errorf("%s=%s: %s = %v", name, set, f.Name, got)
		}
		if opt == "nonempty" {
			c, _, _ := Load(env(map[string]string{name: ""}))
			want := reflect.ValueOf(Defaults()).FieldByIndex(f.Index)
			if got := reflect.ValueOf(c).FieldByIndex(f.Index); !got.Equal(want) {
				t.Errorf("%s empty: %s = %v, want the default %v", name, f.Name, got, want)
			}
		}
	}
	if n < 30 {
		t.Errorf("%d env-tagged fields, want the 33 plain variables", n)
	}
}
