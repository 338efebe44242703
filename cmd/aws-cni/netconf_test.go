package main

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/podnet"
)

func TestParseMTU(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int // 0: refused
	}{
		{"", 9001},
		{"9001", 9001},
		{"1500", 1500},
		{" 1500 ", 1500},
		{"576", 576},
		{"575", 0},
		{"9002", 0},
		{"0", 0},
		{"-1500", 0},
		{"15OO", 0},
		{"1500.5", 0},
		{"0x5dc", 0},
		{"99999999999999999999", 0},
	} {
		got, err := parseMTU(c.in)
		if c.want != 0 {
			if err != nil || got != c.want {
				t.Errorf("parseMTU(%q) = %d, %v; want %d", c.in, got, err, c.want)
			}
			continue
		}
		// The message names the input, its value and the limits.
		if err == nil || !strings.Contains(err.Error(), "mtu \""+c.in+"\"") || !strings.Contains(err.Error(), "576-9001") {
			t.Errorf("parseMTU(%q) error = %v, want one naming mtu, the value and 576-9001", c.in, err)
		}
	}
}

func TestParseConfig(t *testing.T) {
	const base = `"cniVersion":"1.0.0","name":"aws-cni","type":"aws-cni"`
	for _, c := range []struct {
		name     string
		json     string
		wantCode uint // 0: success
		wantMsg  string
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
		{name: "bad mtu string", json: `{` + base + `,"mtu":"jumbo"}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: `netconf mtu "jumbo" is not an integer in 576-9001`},
		{name: "mtu above the range", json: `{` + base + `,"mtu":"9216"}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: `netconf mtu "9216" is not an integer in 576-9001`},
		{name: "unknown SG mode is strict with a warning", json: `{` + base + `,"podSGEnforcingMode":"lenient"}`, check: func(t *testing.T, c *config) {
			if !c.StrictSG || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "lenient") {
				t.Errorf("strict %v warnings %q", c.StrictSG, c.Warnings)
			}
		}},
		{name: "unknown log level is debug with a warning naming it", json: `{` + base + `,"pluginLogLevel":"inf"}`, check: func(t *testing.T, c *config) {
			if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], `pluginLogLevel "inf"`) {
				t.Errorf("warnings %q", c.Warnings)
			}
		}},
		{name: "known log levels in any case warn of nothing", json: `{` + base + `,"pluginLogLevel":"WARNING"}`, check: func(t *testing.T, c *config) {
			if len(c.Warnings) != 0 {
				t.Errorf("warnings %q", c.Warnings)
			}
		}},
		{name: "prefix of 5", json: `{` + base + `,"vethPrefix":"abcde"}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: `netconf vethPrefix: veth prefix "abcde": 5 characters, at most 4`},
		{name: "prefix of 4", json: `{` + base + `,"vethPrefix":"abcd"}`},
		{name: "prefix of a space", json: `{` + base + `,"vethPrefix":" "}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: `netconf vethPrefix: veth prefix " ": character ' ' is not allowed`},
		{name: "prefix with a space", json: `{` + base + `,"vethPrefix":"a b"}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: `veth prefix "a b": character ' '`},
		{name: "prefix with a slash", json: `{` + base + `,"vethPrefix":"a/b"}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: `veth prefix "a/b": character '/'`},
		{name: "reserved prefix", json: `{` + base + `,"vethPrefix":"vlan"}`, wantCode: types.ErrInvalidNetworkConfig, wantMsg: `veth prefix "vlan": reserved`},
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
		// Kept aside for each command to judge (DEL goes on without it).
		{name: "bad prevResult", json: `{` + base + `,"prevResult":{"ips":[{"address":"not-an-ip"}]}}`, check: func(t *testing.T, c *config) {
			if c.PrevResult != nil || c.PrevResultErr == nil {
				t.Errorf("prevResult = %+v, error %v", c.PrevResult, c.PrevResultErr)
			}
		}},
		{name: "prevResult 0.4.0 with null entries", json: `{"cniVersion":"0.4.0","name":"aws-cni","type":"aws-cni","prevResult":{"cniVersion":"0.4.0","interfaces":[null],"ips":[null]}}`, check: func(t *testing.T, c *config) {
			if c.PrevResult != nil || c.PrevResultErr == nil || !strings.Contains(c.PrevResultErr.Error(), "interfaces[0] is null") {
				t.Errorf("prevResult = %+v, error %v", c.PrevResult, c.PrevResultErr)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf, err := parseConfig([]byte(c.json))
			if c.wantCode != 0 {
				var ce *types.Error
				if !errors.As(err, &ce) || ce.Code != c.wantCode || !strings.Contains(ce.Error(), c.wantMsg) {
					t.Fatalf("parseConfig error = %v, want CNI code %d containing %q", err, c.wantCode, c.wantMsg)
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

// TestK8sArgLengths: parsing takes CNI_ARGS values of any length (DEL
// must succeed on them); ADD and CHECK refuse one over 253 characters.
func TestK8sArgLengths(t *testing.T) {
	long := strings.Repeat("a", 254)
	for _, key := range []string{"K8S_POD_NAME", "K8S_POD_NAMESPACE", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID"} {
		a, err := parseK8sArgs(key + "=" + strings.Repeat("a", 253))
		if err != nil {
			t.Errorf("%s of 253 characters refused: %v", key, err)
		}
		if err := checkK8sArgLengths(a); err != nil {
			t.Errorf("%s of 253 characters refused on ADD: %v", key, err)
		}
		a, err = parseK8sArgs("K8S_POD_NAMESPACE=default;" + key + "=" + long)
		if err != nil {
			t.Errorf("%s of 254 characters refused by the parser (so on DEL): %v", key, err)
		}
		want := "CNI_ARGS " + key + " is 254 characters long, at most 253 allowed"
		if ce := checkAddInput("eth0", "ctr", a); ce == nil || ce.Code != types.ErrInvalidNetworkConfig || ce.Msg != want {
			t.Errorf("%s of 254 characters on ADD: error %v, want %q", key, ce, want)
		}
	}
	// A megabyte name (the checkpoint bloat) is refused on ADD the same way.
	a, err := parseK8sArgs("K8S_POD_NAME=" + strings.Repeat("x", 1<<20))
	if err != nil {
		t.Errorf("1 MB pod name refused by the parser: %v", err)
	}
	if ce := checkK8sArgLengths(a); ce == nil || !strings.Contains(ce.Error(), "K8S_POD_NAME is 1048576 characters long") {
		t.Errorf("1 MB pod name on ADD: %v", ce)
	}
}

func TestValidateIfName(t *testing.T) {
	for _, ok := range []string{"eth0", "a", "mNicIf1", "fifteen-chars15"} {
		if err := validateIfName(ok); err != nil {
			t.Errorf("validateIfName(%q) = %v", ok, err)
		}
	}
	for in, want := range map[string]string{
		"":                 `CNI_IFNAME "" is empty`,
		"sixteen-chars-16": `CNI_IFNAME "sixteen-chars-16" is 16 characters long, at most 15 allowed`,
		".":                `CNI_IFNAME "." is not an interface name`,
		"..":               `CNI_IFNAME ".." is not an interface name`,
		"eth/0":            `CNI_IFNAME "eth/0" contains '/', ':', a space or a control character`,
		"eth0:1":           `CNI_IFNAME "eth0:1" contains`,
		"eth 0":            `CNI_IFNAME "eth 0" contains`,
		"eth\n0":           `CNI_IFNAME "eth\n0" contains`,
	} {
		err := validateIfName(in)
		var ce *types.Error
		if !errors.As(err, &ce) || ce.Code != types.ErrInvalidEnvironmentVariables || !strings.HasPrefix(ce.Msg, want) {
			t.Errorf("validateIfName(%q) = %v, want code 4 %q", in, err, want)
		}
	}
}

func TestCheckMTUFamily(t *testing.T) {
	v4 := []podnet.Interface{{Address: singleHost(net.ParseIP("10.0.0.5"))}}
	v6 := []podnet.Interface{{Address: singleHost(net.ParseIP("2001:db8::5"))}}
	if err := checkMTUFamily(576, v4); err != nil {
		t.Errorf("IPv4 pod, mtu 576: %v", err)
	}
	if err := checkMTUFamily(1280, v6); err != nil {
		t.Errorf("IPv6 pod, mtu 1280: %v", err)
	}
	err := checkMTUFamily(1279, v6)
	var ce *types.Error
	want := "netconf mtu 1279 is below IPv6's minimum of 1280 (pod address 2001:db8::5)"
	if !errors.As(err, &ce) || ce.Code != types.ErrInvalidNetworkConfig || ce.Msg != want {
		t.Errorf("IPv6 pod, mtu 1279: %v, want code 7 %q", err, want)
	}
}
