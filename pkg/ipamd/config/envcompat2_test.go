package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// Values with spaces or a newline around them (a YAML slip): upstream
// parses every value as written, so " true" is not a boolean and " 5" not
// an integer, and it uses the default (docs/compatibility.md, "Environment
// variables"). ipamd does the same and warns, naming the variable and the
// value; a string is used as written, with a warning. Comma lists are
// trimmed per entry, as upstream trims them.
func TestEnvValuesNotTrimmed(t *testing.T) {
	c, warns, err := Load(env(map[string]string{
		"ENABLE_PREFIX_DELEGATION":           " true",
		"AWS_VPC_K8S_CNI_EXTERNALSNAT":       "true\n",
		"WARM_IP_TARGET":                     " 5",
		"MAX_ENI":                            "3 ",
		"CLUSTER_NAME":                       "prod ",
		"AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS": " 10.1.0.0/16, 10.2.0.0/16 ",
	}))
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults()
	if c.EnablePrefixDelegation != d.EnablePrefixDelegation || c.ExternalSNAT != d.ExternalSNAT ||
		c.WarmIPTarget != d.WarmIPTarget || c.MaxENI != d.MaxENI {
		t.Errorf("padded values were used: PD %v, external SNAT %v, WARM_IP_TARGET %d, MAX_ENI %d; want the defaults",
			c.EnablePrefixDelegation, c.ExternalSNAT, c.WarmIPTarget, c.MaxENI)
	}
	if c.ClusterName != "prod " {
		t.Errorf("CLUSTER_NAME %q, want it as written", c.ClusterName)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("10.2.0.0/16")}
	if !slices.Equal(c.ExcludeSNATCIDRs, want) {
		t.Errorf("exclude-SNAT CIDRs %v, want %v", c.ExcludeSNATCIDRs, want)
	}
	for _, name := range []string{"ENABLE_PREFIX_DELEGATION", "AWS_VPC_K8S_CNI_EXTERNALSNAT", "WARM_IP_TARGET", "MAX_ENI", "CLUSTER_NAME"} {
		if !slices.ContainsFunc(warns, func(w string) bool { return strings.HasPrefix(w, name+"=") }) {
			t.Errorf("no warning names %s: %q", name, warns)
		}
	}
	for _, w := range warns {
		if strings.HasPrefix(w, "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS") {
			t.Errorf("warning for a list upstream trims: %q", w)
		}
	}

	// Upstream's entrypoint refuses what it cannot parse, spaces included.
	for name, v := range map[string]string{"IP_COOLDOWN_PERIOD": " 30", "AWS_VPC_ENI_MTU": "1500 "} {
		if _, _, err := Load(env(map[string]string{name: v})); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s=%q: err %v, want it refused", name, v, err)
		}
	}
}
