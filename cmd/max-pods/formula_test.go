package main

import (
	"strings"
	"testing"
)

func TestMaxPods(t *testing.T) {
	var (
		secondary = Mode{}
		pd        = Mode{PrefixDelegation: true}
		custom    = Mode{CustomNetworking: true}
		both      = Mode{PrefixDelegation: true, CustomNetworking: true}
		auto      = Cap{Auto: true}
		none      = Cap{}
	)
	tests := []struct {
		typ  string
		l    Limits
		mode Mode
		cap  Cap
		want int
	}{
		{"m5.large", Limits{3, 10, 2}, secondary, auto, 29},
		{"m5.large", Limits{3, 10, 2}, custom, auto, 20},
		{"m5.large", Limits{3, 10, 2}, pd, auto, 110},
		{"m5.large", Limits{3, 10, 2}, pd, none, 434},
		{"m5.large", Limits{3, 10, 2}, both, auto, 110},
		{"m5.large", Limits{3, 10, 2}, both, none, 290},
		{"m5.xlarge", Limits{4, 15, 4}, secondary, auto, 58},
		{"c5.xlarge", Limits{4, 15, 4}, custom, auto, 44},
		{"t3.medium", Limits{3, 6, 2}, secondary, auto, 17},
		{"t3.medium", Limits{3, 6, 2}, custom, auto, 12},
		{"t3.medium", Limits{3, 6, 2}, pd, auto, 110},
		{"c5.4xlarge", Limits{8, 30, 16}, secondary, auto, 234},
		{"c5.4xlarge", Limits{8, 30, 16}, pd, auto, 110},
		{"c5.12xlarge", Limits{8, 30, 48}, secondary, auto, 234},
		{"c5.12xlarge", Limits{8, 30, 48}, pd, auto, 250},
		{"p4d.24xlarge", Limits{15, 50, 96}, secondary, auto, 737},
		{"t2.micro", Limits{2, 2, 1}, secondary, auto, 4},
		{"t2.micro", Limits{2, 2, 1}, custom, auto, 3},
		{"m5.large fixed cap", Limits{3, 10, 2}, secondary, Cap{Fixed: 20}, 20},
		{"one ENI, custom networking", Limits{1, 4, 1}, custom, auto, 2},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"/"+tt.mode.String(), func(t *testing.T) {
			got, err := MaxPods(tt.l, tt.mode, tt.cap)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("MaxPods(%+v, %s) = %d, want %d", tt.l, tt.mode, got, tt.want)
			}
		})
	}
}

func TestMaxPodsErrors(t *testing.T) {
	if _, err := MaxPods(Limits{ENIs: 3, IPv4PerENI: 10}, Mode{PrefixDelegation: true}, Cap{Auto: true}); err == nil || !strings.Contains(err.Error(), "-vcpus") {
		t.Errorf("auto PD cap without vCPUs: %v", err)
	}
	if _, err := MaxPods(Limits{ENIs: 0, IPv4PerENI: 10}, Mode{}, Cap{}); err == nil || !strings.Contains(err.Error(), "ENIs=0") {
		t.Errorf("zero ENIs: %v", err)
	}
}
