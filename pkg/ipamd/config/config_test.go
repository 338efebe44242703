package config

import (
	"net/netip"
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
		"MINIMUM_IP_TARGET":                  " 10 ",
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
	if len(warns) != 2 {
		t.Errorf("want 2 warnings (HTTP_TIMEOUT, reserved tag), got %q", warns)
	}
	if c.CheckpointPath(0) != "/tmp/ipam.json" || c.CheckpointPath(2) != "/tmp/ipam-nic-2.json" {
		t.Errorf("checkpoint paths: %s %s", c.CheckpointPath(0), c.CheckpointPath(2))
	}
}

func TestLoadRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // substrings that must all appear in the error
	}{
		{"bool garbage", map[string]string{"ENABLE_POD_ENI": "yes please"}, []string{`ENABLE_POD_ENI="yes please"`, "boolean"}},
		{"negative warm ip", map[string]string{"WARM_IP_TARGET": "-1"}, []string{`WARM_IP_TARGET="-1"`, "negative"}},
		{"warm eni not int", map[string]string{"WARM_ENI_TARGET": "one"}, []string{`WARM_ENI_TARGET="one"`, "integer"}},
		{"max eni not int", map[string]string{"MAX_ENI": "4.5"}, []string{`MAX_ENI="4.5"`}},
		{"both families", map[string]string{"ENABLE_IPv6": "true", "ENABLE_PREFIX_DELEGATION": "true"}, []string{"ENABLE_IPv4=true and ENABLE_IPv6=true"}},
		{"no family", map[string]string{"ENABLE_IPv4": "false"}, []string{"ENABLE_IPv4=false and ENABLE_IPv6=false"}},
		{"v6 without pd", map[string]string{"ENABLE_IPv4": "false", "ENABLE_IPv6": "true"}, []string{"requires ENABLE_PREFIX_DELEGATION"}},
		{"v6 with custom networking", map[string]string{"ENABLE_IPv4": "false", "ENABLE_IPv6": "true", "ENABLE_PREFIX_DELEGATION": "true", "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG": "true"}, []string{"CUSTOM_NETWORK_CFG"}},
		{"pd all zero", map[string]string{"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "00", "WARM_IP_TARGET": "0"}, []string{"ENABLE_PREFIX_DELEGATION=true needs one of"}},
		{"np mode", map[string]string{"NETWORK_POLICY_ENFORCING_MODE": "lax"}, []string{`NETWORK_POLICY_ENFORCING_MODE="lax"`, "none, strict, standard"}},
		{"sg mode", map[string]string{"POD_SECURITY_GROUP_ENFORCING_MODE": "loose"}, []string{`POD_SECURITY_GROUP_ENFORCING_MODE="loose"`}},
		{"randomize", map[string]string{"AWS_VPC_K8S_CNI_RANDOMIZESNAT": "random"}, []string{`AWS_VPC_K8S_CNI_RANDOMIZESNAT="random"`}},
		{"snat cidr", map[string]string{"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "10.0.0.0/8,banana"}, []string{`entry "banana"`}},
		{"snat cidr v6", map[string]string{"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": "fd00::/8"}, []string{"not an IPv4 CIDR"}},
		{"service cidr", map[string]string{"AWS_EXTERNAL_SERVICE_CIDRS": "1.2.3.4"}, []string{"AWS_EXTERNAL_SERVICE_CIDRS"}},
		{"veth prefix long", map[string]string{"AWS_VPC_K8S_CNI_VETHPREFIX": "abcde"}, []string{`AWS_VPC_K8S_CNI_VETHPREFIX="abcde"`}},
		{"veth prefix eth", map[string]string{"AWS_VPC_K8S_CNI_VETHPREFIX": "eth"}, []string{`"eth"`}},
		{"mtu low", map[string]string{"AWS_VPC_ENI_MTU": "500"}, []string{"AWS_VPC_ENI_MTU=500"}},
		{"mtu text", map[string]string{"AWS_VPC_ENI_MTU": "jumbo"}, []string{`AWS_VPC_ENI_MTU="jumbo"`}},
		{"cooldown", map[string]string{"IP_COOLDOWN_PERIOD": "30s"}, []string{`IP_COOLDOWN_PERIOD="30s"`}},
		{"connmark zero", map[string]string{"AWS_VPC_K8S_CNI_CONNMARK": "0"}, []string{`AWS_VPC_K8S_CNI_CONNMARK="0"`}},
		{"connmark huge", map[string]string{"AWS_VPC_K8S_CNI_CONNMARK": "0x100000000"}, []string{"AWS_VPC_K8S_CNI_CONNMARK"}},
		{"tags json", map[string]string{"ADDITIONAL_ENI_TAGS": "{team:a}"}, []string{"ADDITIONAL_ENI_TAGS", "JSON"}},
		{"http timeout", map[string]string{"HTTP_TIMEOUT": "ten"}, []string{`HTTP_TIMEOUT="ten"`}},
		{"log level", map[string]string{"AWS_VPC_K8S_CNI_LOGLEVEL": "verbose"}, []string{`AWS_VPC_K8S_CNI_LOGLEVEL="verbose"`}},
		{"several at once", map[string]string{"WARM_IP_TARGET": "x", "MINIMUM_IP_TARGET": "y"}, []string{"WARM_IP_TARGET", "MINIMUM_IP_TARGET"}},
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
