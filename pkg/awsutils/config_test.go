package awsutils

import (
	"strings"
	"testing"
	"time"
)

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
