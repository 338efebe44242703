package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestParseMTU(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
		warn bool
	}{
		{"", 9001, false},
		{"9001", 9001, false},
		{"1500", 1500, false},
		{" 1500 ", 1500, false},
		{"576", 576, false},
		{"575", 9001, true},
		{"9002", 9001, true},
		{"0", 9001, true},
		{"-1500", 9001, true},
		{"15OO", 9001, true},
		{"1500.5", 9001, true},
		{"0x5dc", 9001, true},
	} {
		got, warn := parseMTU(c.in)
		if got != c.want || (warn != "") != c.warn {
			t.Errorf("parseMTU(%q) = %d, %q; want %d, warning %v", c.in, got, warn, c.want, c.warn)
		}
		if c.warn && !strings.Contains(warn, c.in) {
			t.Errorf("warning %q does not name the value %q", warn, c.in)
		}
	}
}

func TestParseConfig(t *testing.T) {
	const base = `"cniVersion":"1.0.0","name":"aws-cni","type":"aws-cni"`
	for _, c := range []struct {
		name     string
		json     string
		wantCode uint // 0: success
		check    func(*testing.T, *config)
	}{
		{name: "defaults", json: `{` + base + `}`, check: func(t *testing.T, c *config) {
			if c.VethPrefix != "eni" || c.MTU != 9001 || !c.StrictSG || c.MultiNIC || c.PrevResult != nil || len(c.Warnings) != 0 {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "conflist values", json: `{` + base + `,"vethPrefix":"abcd","mtu":"1500","podSGEnforcingMode":"standard",
			"pluginLogFile":"/var/log/x.log","pluginLogLevel":"Debug","ipamdSocket":"/tmp/i.sock"}`, check: func(t *testing.T, c *config) {
			if c.VethPrefix != "abcd" || c.MTU != 1500 || c.StrictSG || c.LogFile != "/var/log/x.log" || c.LogLevel != "Debug" || c.IpamdSocket != "/tmp/i.sock" {
				t.Errorf("parsed = %+v", c)
			}
		}},
		{name: "mtu as a JSON number is not the conflist's string", json: `{` + base + `,"mtu":1500}`, wantCode: types.ErrDecodingFailure},
		{name: "bad mtu string falls back with a warning", json: `{` + base + `,"mtu":"jumbo"}`, check: func(t *testing.T, c *config) {
			if c.MTU != 9001 || len(c.Warnings) != 1 {
				t.Errorf("MTU %d warnings %q", c.MTU, c.Warnings)
			}
		}},
		{name: "unknown SG mode is strict with a warning", json: `{` + base + `,"podSGEnforcingMode":"lenient"}`, check: func(t *testing.T, c *config) {
			if !c.StrictSG || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "lenient") {
				t.Errorf("strict %v warnings %q", c.StrictSG, c.Warnings)
			}
		}},
		{name: "prefix of 5", json: `{` + base + `,"vethPrefix":"abcde"}`, wantCode: types.ErrInvalidNetworkConfig},
		{name: "prefix of 4", json: `{` + base + `,"vethPrefix":"vlan"}`},
		{name: "not JSON", json: `{"cniVersion":`, wantCode: types.ErrDecodingFailure},
		{name: "no name", json: `{"cniVersion":"1.0.0"}`, wantCode: types.ErrInvalidNetworkConfig},
		{name: "multi-NIC annotation", json: `{` + base + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"k8s.amazonaws.com/nicConfig":"multi-nic-attachment"}}}`,
			check: func(t *testing.T, c *config) {
				if !c.MultiNIC {
					t.Error("multi-NIC annotation not detected")
				}
			}},
		{name: "other annotation", json: `{` + base + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"k8s.amazonaws.com/nicConfig":"single"}}}`,
			check: func(t *testing.T, c *config) {
				if c.MultiNIC {
					t.Error("multi-NIC requested without the annotation value")
				}
			}},
		{name: "prevResult", json: `{` + base + `,"prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"eni1"},{"name":"eth0","sandbox":"/ns","mac":"2"},{"name":"dummyx","mac":"0","sandbox":"1"}],
			"ips":[{"interface":1,"address":"10.0.0.5/32"}]}}`, check: func(t *testing.T, c *config) {
			if c.PrevResult == nil || len(c.PrevResult.Interfaces) != 3 || c.PrevResult.IPs[0].Address.String() != "10.0.0.5/32" {
				t.Errorf("prevResult = %+v", c.PrevResult)
			}
		}},
		{name: "bad prevResult", json: `{` + base + `,"prevResult":{"ips":[{"address":"not-an-ip"}]}}`, wantCode: types.ErrInvalidNetworkConfig},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf, err := parseConfig([]byte(c.json))
			if c.wantCode != 0 {
				var ce *types.Error
				if !errors.As(err, &ce) || ce.Code != c.wantCode {
					t.Fatalf("parseConfig error = %v, want CNI code %d", err, c.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			if c.check != nil {
				c.check(t, conf)
			}
		})
	}
}

func TestParseK8sArgs(t *testing.T) {
	got, err := parseK8sArgs("IgnoreUnknown=1;K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns-1;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1;FOO=bar")
	if err != nil {
		t.Fatal(err)
	}
	want := k8sArgs{PodName: "coredns-1", PodNamespace: "kube-system", InfraContainer: "abc", PodUID: "u-1"}
	if got != want {
		t.Errorf("parseK8sArgs = %+v, want %+v", got, want)
	}
	if got, err := parseK8sArgs(""); err != nil || got != (k8sArgs{}) {
		t.Errorf("empty CNI_ARGS = %+v, %v", got, err)
	}
	var ce *types.Error
	if _, err := parseK8sArgs("K8S_POD_NAME"); !errors.As(err, &ce) || ce.Code != types.ErrInvalidNetworkConfig {
		t.Errorf("malformed CNI_ARGS error = %v, want invalid config", err)
	}
}
