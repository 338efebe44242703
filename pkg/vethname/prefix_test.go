package vethname

import (
	"strings"
	"testing"
)

func TestValidatePrefixAccepts(t *testing.T) {
	for _, p := range []string{"eni", "cali", "a", "x-_1", "veth"} {
		if err := ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v, want nil", p, err)
		}
		if n := len(HostVethName(p, "default", "sample-pod", 0)); n > maxIfNameLen {
			t.Errorf("prefix %q accepted but gives a %d-character name", p, n)
		}
	}
}

func TestValidatePrefixRefuses(t *testing.T) {
	tests := []struct {
		prefix string
		want   string // substring of the error
	}{
		{"", "must not be empty"},
		{"enix1", "at most 4"},
		{"averylongprefix", "at most 4"},
		{"e/n", `'/'`},
		{"e n", `' '`},
		{"e\tn", `'\t'`},
		{"e:n", `':'`},
		{"eé", "not allowed"},
		{"eth", "reserved"},
		{"lo", "reserved"},
		{"vlan", "reserved"},
	}
	for _, tc := range tests {
		err := ValidatePrefix(tc.prefix)
		if err == nil {
			t.Errorf("ValidatePrefix(%q) = nil, want an error", tc.prefix)
			continue
		}
		// Every message names the input it refuses.
		if !strings.Contains(err.Error(), "veth prefix") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidatePrefix(%q) = %q, want it to name the input and contain %q", tc.prefix, err, tc.want)
		}
	}
}
