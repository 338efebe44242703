package main

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// runtimeNetconf is aws-cni's entry of misc/10-aws.conflist as a runtime
// passes it (libcni: the list's cniVersion and name, keys sorted,
// json.Marshal's HTML escaping, the pod's annotations under runtimeConfig).
const runtimeNetconf = `{"capabilities":{"io.kubernetes.cri.pod-annotations":true},"cniVersion":"0.4.0","mtu":"9001",` +
	`"name":"aws-cni","pluginLogFile":"/var/log/aws-routed-eni/plugin.log","pluginLogLevel":"DEBUG",` +
	`"podSGEnforcingMode":"strict","runtimeConfig":{"io.kubernetes.cri.pod-annotations":{` +
	`"k8s.amazonaws.com/nicConfig":"multi-nic-attachment","kubernetes.io/config.seen":"2026-12-06T12:00:00.000000000Z",` +
	`"kubectl.kubernetes.io/last-applied-configuration":"{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"x\":\"\u003cy\u0026\"}\n"}},` +
	`"type":"aws-cni","vethPrefix":"eni"}`

// TestScanNetConfReadsTheRuntimesNetconf: the netconf every ADD gets is
// read without encoding/json's reflection, to the same values.
func TestScanNetConfReadsTheRuntimesNetconf(t *testing.T) {
	withPrev := runtimeNetconf[:len(runtimeNetconf)-1] + `,"prevResult":{"cniVersion":"0.4.0","interfaces":[{"name":"eni1"}],"ips":[{"version":"4","address":"10.0.0.1/32","interface":0}],"dns":{}}}`
	for _, in := range []string{runtimeNetconf, withPrev} {
		got, ok := scanNetConf([]byte(in))
		if !ok {
			t.Fatalf("scanNetConf(%s) left it to encoding/json", in)
		}
		if want := decodeNetConf(t, in); !sameNetConf(got, want) {
			t.Errorf("scanNetConf(%s) = %+v, encoding/json %+v", in, got, want)
		}
	}
}

// baseNetconf are the members every netconf case has.
const baseNetconf = `"cniVersion":"1.0.0","name":"aws-cni","type":"aws-cni"`

// netconfCases are netconfs the fast path must read as encoding/json
// does, or leave to it.
var netconfCases = []string{
	`{` + baseNetconf + `}`,
	`{` + baseNetconf + `,"vethPrefix":"abcd","mtu":"1500","podSGEnforcingMode":"standard","pluginLogFile":"stderr","pluginLogLevel":"info","ipamdSocket":"/a","npaSocket":"/b"}`,
	`{` + baseNetconf + `,"mtu":1500}`,
	`{` + baseNetconf + `,"MTU":"1500"}`,
	`{` + baseNetconf + `,"mtu":"1500","mtu":"9001"}`,
	`{` + baseNetconf + `,"vethPrefix":"a\u0062"}`,
	`{` + baseNetconf + `,"prevResult":null}`,
	`{` + baseNetconf + `,"prevResult":[]}`,
	`{` + baseNetconf + `,"prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.1/32"}]}}`,
	`{` + baseNetconf + `,"runtimeConfig":null}`,
	`{` + baseNetconf + `,"runtimeConfig":{"portMappings":[{"hostPort":80}]}}`,
	`{` + baseNetconf + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":null}}`,
	`{` + baseNetconf + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"a":1}}}`,
	`{` + baseNetconf + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"k8s.amazonaws.com/nicConfig":"multi-nic-attachment"}}}`,
	`{` + baseNetconf + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"k8s.amazonaws.com\/nicConfig":"multi-nic-attachment"}}}`,
	`{` + baseNetconf + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"k8s.amazonaws.com/nicConfig":"multi-nic-\u0061ttachment"}}}`,
	`{` + baseNetconf + `,"runtimeConfig":{"IO.kubernetes.cri.pod-annotations":{"k8s.amazonaws.com/nicConfig":"multi-nic-attachment"}}}`,
	`{` + baseNetconf + `,"RuntimeConfig":{}}`,
	`{"cniVersion":`,
	`[]`,
}

// TestScanNetConfAgreesWithEncodingJSON: whenever scanNetConf answers,
// its netconf is encoding/json's; where it does not, parseConfig decodes
// with encoding/json.
func TestScanNetConfAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range netconfCases {
		got, ok := scanNetConf([]byte(in))
		if !ok {
			continue
		}
		if want := decodeNetConf(t, in); !sameNetConf(got, want) {
			t.Errorf("scanNetConf(%s) = %+v, encoding/json %+v", in, got, want)
		}
	}
}

func decodeNetConf(t *testing.T, in string) netConf {
	t.Helper()
	var nc netConf
	if err := json.Unmarshal([]byte(in), &nc); err != nil {
		t.Fatalf("scanNetConf took %s, which encoding/json refuses: %v", in, err)
	}
	return nc
}

// sameNetConf compares what the plugin reads of a netConf.
func sameNetConf(a, b netConf) bool {
	return reflect.DeepEqual(a.stringFields(), b.stringFields()) && bytes.Equal(a.RawPrevResult, b.RawPrevResult) &&
		a.RuntimeConfig.PodAnnotations[nicConfigKey] == b.RuntimeConfig.PodAnnotations[nicConfigKey]
}
