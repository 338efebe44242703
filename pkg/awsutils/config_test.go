package awsutils

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestConfigFromEnv(t *testing.T) {
	cfg, warns := ConfigFromEnv(env(map[string]string{
		"AWS_EC2_ENDPOINT":      "http://127.0.0.1:1234",
		"HTTP_TIMEOUT":          "25",
		"VPC_CNI_VERSION":       "v1.23.1",
		"CLUSTER_NAME":          "prod",
		"ENABLE_IMDS_ONLY_MODE": "true",
		"ADDITIONAL_ENI_TAGS":   `{"team":"net","node.k8s.amazonaws.com/instance_id":"x","cost":"7"}`,
	}))
	if len(warns) != 1 || !strings.Contains(warns[0], "node.k8s.amazonaws.com/instance_id") {
		t.Errorf("warnings = %q, want one naming the reserved key", warns)
	}
	want := Config{
		EC2Endpoint:    "http://127.0.0.1:1234",
		HTTPTimeout:    25 * time.Second,
		Version:        "v1.23.1",
		ClusterName:    "prod",
		IMDSOnly:       true,
		AdditionalTags: map[string]string{"team": "net", "cost": "7"},
	}
	if d := cmp.Diff(want, cfg, cmp.Comparer(func(a, b Observer) bool { return a == b })); d != "" {
		t.Errorf("config (-want +got):\n%s", d)
	}
}

func TestConfigFromEnvBadValuesFallBackWithWarnings(t *testing.T) {
	cfg, warns := ConfigFromEnv(env(map[string]string{
		"HTTP_TIMEOUT":          "3",
		"ENABLE_IMDS_ONLY_MODE": "maybe",
		"ADDITIONAL_ENI_TAGS":   `{"a":`,
	}))
	if cfg.HTTPTimeout != MinHTTPTimeout || cfg.IMDSOnly || cfg.AdditionalTags != nil {
		t.Errorf("config = %+v, want defaults", cfg)
	}
	for _, name := range []string{"HTTP_TIMEOUT", "ENABLE_IMDS_ONLY_MODE", "ADDITIONAL_ENI_TAGS"} {
		found := false
		for _, w := range warns {
			found = found || strings.Contains(w, name)
		}
		if !found {
			t.Errorf("no warning names %s: %q", name, warns)
		}
	}
	cfg, _ = ConfigFromEnv(env(map[string]string{"HTTP_TIMEOUT": "abc"}))
	if cfg.HTTPTimeout != MinHTTPTimeout {
		t.Errorf("HTTP_TIMEOUT=abc gave %s", cfg.HTTPTimeout)
	}
}

func TestConfigValidateNamesBadFields(t *testing.T) {
	cfg := Config{
		HTTPTimeout:    time.Second,
		EC2Endpoint:    "not a url",
		Retry:          RetryConfig{MaxAttempts: -1},
		Limits:         RateLimits{Buckets: map[LimitClass]Bucket{LimitDescribe: {Size: 0, RefillPerSecond: 1}}},
		LeakedPageSize: 2,
		Credentials:    &StaticCredentials{AccessKeyID: "a"},
	}
	cfg.Defaults()
	err := cfg.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, name := range []string{"HTTPTimeout", "EC2Endpoint", "Retry.MaxAttempts", "Limits.Buckets[describe]", "LeakedPageSize", "Credentials"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	good := Config{}
	good.Defaults()
	if err := good.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second}
	for _, tc := range []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{1, 0, 50 * time.Millisecond},
		{1, 0.999999, 99999950 * time.Nanosecond},
		{2, 0, 100 * time.Millisecond},
		{3, 0.5, 300 * time.Millisecond},
		{4, 0, 400 * time.Millisecond},
		{5, 0, 500 * time.Millisecond}, // capped at Max
		{60, 0, 500 * time.Millisecond},
	} {
		if got := b.Delay(tc.attempt, tc.r); got != tc.want {
			t.Errorf("Delay(%d, %v) = %s, want %s", tc.attempt, tc.r, got, tc.want)
		}
	}
}
