package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestDoorChecksRefuse: each value that would break the node later is
// refused at start with a message naming the variable and the limit.
func TestDoorChecksRefuse(t *testing.T) {
	manyTags := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"t%d":"v"`, i)
		}
		return b.String() + "}"
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // exact line of the joined error
	}{
		{"tag aws prefix", map[string]string{"ADDITIONAL_ENI_TAGS": `{"aws:team":"a"}`},
			`ADDITIONAL_ENI_TAGS: tag key "aws:team" starts with "aws:", which EC2 reserves for AWS`},
		{"tag AWS prefix any case", map[string]string{"ADDITIONAL_ENI_TAGS": `{"AwS:team":"a"}`},
			`ADDITIONAL_ENI_TAGS: tag key "AwS:team" starts with "aws:", which EC2 reserves for AWS`},
		{"tag empty key", map[string]string{"ADDITIONAL_ENI_TAGS": `{"":"a"}`},
			`ADDITIONAL_ENI_TAGS: tag key "" is empty; EC2 refuses it`},
		{"tag blank key", map[string]string{"ADDITIONAL_ENI_TAGS": `{"  ":"a"}`},
			`ADDITIONAL_ENI_TAGS: tag key "  " is empty; EC2 refuses it`},
		{"tag key 129", map[string]string{"ADDITIONAL_ENI_TAGS": `{"` + strings.Repeat("k", 129) + `":"a"}`},
			`ADDITIONAL_ENI_TAGS: tag key "kkkkkkkkkkkkkkkkkkkk"… has 129 characters, EC2 allows at most 128`},
		{"tag value 257", map[string]string{"ADDITIONAL_ENI_TAGS": `{"team":"` + strings.Repeat("é", 257) + `"}`},
			`ADDITIONAL_ENI_TAGS: value of tag "team" has 257 characters, EC2 allows at most 256`},
		{"49 tags plus ours", map[string]string{"ADDITIONAL_ENI_TAGS": manyTags(49)},
			`ADDITIONAL_ENI_TAGS: 49 tags plus the 2 vpc-cni adds make 51, EC2 allows at most 50 per ENI`},
		{"47 tags plus ours with cluster", map[string]string{"ADDITIONAL_ENI_TAGS": manyTags(47), "CLUSTER_NAME": "c"},
			`ADDITIONAL_ENI_TAGS: 47 tags plus the 4 vpc-cni adds make 51, EC2 allows at most 50 per ENI`},
		{"cooldown int64 max", map[string]string{"IP_COOLDOWN_PERIOD": "9223372036854775807"},
			`IP_COOLDOWN_PERIOD="9223372036854775807": above the maximum of 86400 seconds (24h0m0s)`},
		{"cooldown beyond int64", map[string]string{"IP_COOLDOWN_PERIOD": "99999999999999999999"},
			`IP_COOLDOWN_PERIOD="99999999999999999999": above the maximum of 86400 seconds (24h0m0s)`},
		{"cooldown 246 years", map[string]string{"IP_COOLDOWN_PERIOD": "99999999999"},
			`IP_COOLDOWN_PERIOD="99999999999": above the maximum of 86400 seconds (24h0m0s)`},
		{"cooldown text", map[string]string{"IP_COOLDOWN_PERIOD": "30s"},
			`IP_COOLDOWN_PERIOD="30s": not a whole number of seconds`},
		{"cooldown negative", map[string]string{"IP_COOLDOWN_PERIOD": "-5"},
			`IP_COOLDOWN_PERIOD="-5": must not be negative`},
		{"veth prefix space", map[string]string{"AWS_VPC_K8S_CNI_VETHPREFIX": "a b"},
			`AWS_VPC_K8S_CNI_VETHPREFIX="a b": veth prefix "a b": character ' ' is not allowed in an interface name`},
		{"veth prefix slash", map[string]string{"AWS_VPC_K8S_CNI_VETHPREFIX": "a/b"},
			`AWS_VPC_K8S_CNI_VETHPREFIX="a/b": veth prefix "a/b": character '/' is not allowed in an interface name`},
		{"veth prefix empty", map[string]string{"AWS_VPC_K8S_CNI_VETHPREFIX": ""},
			`AWS_VPC_K8S_CNI_VETHPREFIX="": veth prefix "": must not be empty`},
		{"mtu above", map[string]string{"AWS_VPC_ENI_MTU": "9002"},
			`AWS_VPC_ENI_MTU=9002: must be within 576–9001`},
		{"mtu below v6", map[string]string{"AWS_VPC_ENI_MTU": "1279", "ENABLE_IPv6": "true", "ENABLE_PREFIX_DELEGATION": "true"},
			`AWS_VPC_ENI_MTU=1279: must be within 1280–9001`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load(env(tc.env))
			if err == nil {
				t.Fatalf("Load accepted %v", tc.env)
			}
			if lines := strings.Split(err.Error(), "\n"); len(lines) != 1 || lines[0] != tc.want {
				t.Errorf("error:\n%s\nwant exactly:\n%s", err, tc.want)
			}
		})
	}
}

// TestDoorChecksAccept: values at the limits start without a warning.
func TestDoorChecksAccept(t *testing.T) {
	tags := `{"` + strings.Repeat("k", 128) + `":"` + strings.Repeat("v", 256) + `","team":"","Aws-not-reserved":"x"}`
	c, warns, err := Load(env(map[string]string{
		"ADDITIONAL_ENI_TAGS": tags, "CLUSTER_NAME": "c",
		"IP_COOLDOWN_PERIOD": "86400", "HTTP_TIMEOUT": "600",
		"AWS_VPC_K8S_CNI_VETHPREFIX": "cali", "AWS_VPC_ENI_MTU": "576",
	}))
	if err != nil || len(warns) != 0 {
		t.Fatalf("Load at the limits: err %v, warnings %q", err, warns)
	}
	if c.IPCooldown != MaxIPCooldown || c.HTTPTimeout != MaxHTTPTimeout || len(c.AdditionalENITags) != 3 || c.VethPrefix != "cali" || c.ENIMTU != 576 {
		t.Errorf("values not kept: %+v", c)
	}
}

// TestHTTPTimeoutBounds: HTTP_TIMEOUT keeps upstream's fallback for bad
// values and clamps huge ones instead of overflowing.
func TestHTTPTimeoutBounds(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want time.Duration
		warn string
	}{
		{"9223372036854775807", MaxHTTPTimeout, `HTTP_TIMEOUT="9223372036854775807": above the maximum of 600 seconds (10m0s); using 600`},
		{"99999999999999999999", MaxHTTPTimeout, `HTTP_TIMEOUT="99999999999999999999": above the maximum of 600 seconds (10m0s); using 600`},
		{"601", MaxHTTPTimeout, `HTTP_TIMEOUT="601": above the maximum of 600 seconds (10m0s); using 600`},
		{"-20", 10 * time.Second, `HTTP_TIMEOUT="-20": below the minimum of 10 seconds; using 10`},
		{"9", 10 * time.Second, `HTTP_TIMEOUT="9": below the minimum of 10 seconds; using 10`},
		{"1e3", 10 * time.Second, `HTTP_TIMEOUT="1e3": not an integer number of seconds; using 10`},
		{"45", 45 * time.Second, ""},
	} {
		c, warns, err := Load(env(map[string]string{"HTTP_TIMEOUT": tc.v}))
		if err != nil {
			t.Errorf("HTTP_TIMEOUT=%s: %v, want a fallback", tc.v, err)
			continue
		}
		if c.HTTPTimeout != tc.want {
			t.Errorf("HTTP_TIMEOUT=%s: got %s, want %s", tc.v, c.HTTPTimeout, tc.want)
		}
		got := strings.Join(warns, "\n")
		if got != tc.warn {
			t.Errorf("HTTP_TIMEOUT=%s: warnings %q, want %q", tc.v, got, tc.warn)
		}
	}
}
