package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/conflist"
	"github.com/vpc-cni/vpc-cni/pkg/egress"
)

// An MTU with leading zeros or a sign ("09001", "+1500") is an integer to
// upstream's entrypoint, which then writes the variable's text unchanged
// into both plugins' "mtu"; the plugins parse it to the same number.
// Ours wrote the parsed number ("9001"). The bytes now match, with and
// without chained plugins, and egress-cni still reads the same MTU.
func TestMTUWrittenAsGiven(t *testing.T) {
	for _, tc := range []struct {
		env      []string
		wantText string
		wantMTU  int
	}{
		{[]string{"POD_MTU", "09001"}, "09001", 9001},
		{[]string{"POD_MTU", "+1500"}, "+1500", 1500},
		{[]string{"AWS_VPC_ENI_MTU", "01500"}, "01500", 1500},
		{[]string{"AWS_VPC_ENI_MTU", "01500", "POD_MTU", "9001"}, "9001", 9001},
		{[]string{"AWS_VPC_ENI_MTU", "1500", "POD_MTU", "0001400"}, "0001400", 1400},
		{nil, "9001", 9001},
	} {
		for _, bandwidth := range []string{"false", "true"} {
			cfg, warnings, err := parseConfig(env(append(tc.env, "ENABLE_BANDWIDTH_PLUGIN", bandwidth)...))
			if err != nil || len(warnings) > 0 {
				t.Fatalf("%q: err=%v warnings=%q", tc.env, err, warnings)
			}
			cfg.Conflist.Egress.Enabled, cfg.Conflist.Egress.NodeIP = true, "2001:db8::10"
			b, err := conflist.Render(cfg.Conflist)
			if err != nil {
				t.Fatal(err)
			}
			var list struct {
				Plugins []json.RawMessage `json:"plugins"`
			}
			if err := json.Unmarshal(b, &list); err != nil {
				t.Fatal(err)
			}
			for _, raw := range list.Plugins[:2] {
				var p map[string]any
				if err := json.Unmarshal(raw, &p); err != nil {
					t.Fatal(err)
				}
				if p["mtu"] != tc.wantText {
					t.Errorf("%q bandwidth=%s: %v has mtu %q, want %q", tc.env, bandwidth, p["type"], p["mtu"], tc.wantText)
				}
			}
			eg, err := egress.ParseConfig(list.Plugins[1])
			if err != nil {
				t.Fatalf("%q: egress-cni reads its netconf: %v", tc.env, err)
			}
			if eg.MTU != tc.wantMTU {
				t.Errorf("%q: egress-cni MTU %d, want %d", tc.env, eg.MTU, tc.wantMTU)
			}
		}
	}
}

// Spaces around an MTU make it no integer to upstream's entrypoint, which
// refuses it (exit 1): so do we, naming the variable, for both variables
// and leading zeros alike.
func TestPaddedMTURefusedNamingVariable(t *testing.T) {
	for _, name := range []string{"POD_MTU", "AWS_VPC_ENI_MTU"} {
		for _, v := range []string{" 09001", "09001 ", "\t1500", "1_500", "0x5dc"} {
			if _, _, err := parseConfig(env(name, v)); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%q: err %v, want it refused naming %s", name, v, err, name)
			}
		}
	}
}
