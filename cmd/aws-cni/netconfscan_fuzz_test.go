package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzScanNetConfAgreesWithEncodingJSON: whenever scanNetConf answers,
// encoding/json takes the same input and decodes the same netConf (of the
// pod annotations, only the one the plugin reads).
func FuzzScanNetConfAgreesWithEncodingJSON(f *testing.F) {
	const base = `"cniVersion":"1.0.0","name":"aws-cni","type":"aws-cni"`
	for _, s := range []string{
		runtimeNetconf,
		runtimeNetconf[:len(runtimeNetconf)-1] + `,"prevResult":{"cniVersion":"0.4.0","interfaces":[{"name":"eni1"}],"ips":[{"version":"4","address":"10.0.0.1/32","interface":0}],"dns":{}}}`,
		`{` + base + `}`,
		`{` + base + `,"vethPrefix":"abcd","mtu":"1500","podSGEnforcingMode":"standard","pluginLogFile":"stderr","pluginLogLevel":"info","ipamdSocket":"/a","npaSocket":"/b"}`,
		`{` + base + `,"mtu":1500}`,
		`{` + base + `,"MTU":"1500"}`,
		`{` + base + `,"mtu":"1500","mtu":"9001"}`,
		`{` + base + `,"vethPrefix":"a\u0062"}`,
		`{` + base + `,"vethPre\u212Ax":"x"}`, // Kelvin sign
		`{` + base + `,"pluginLogFile":"x","\u017FluginLogFile":"y"}`,
		"{" + base + ",\"vethPre\u212Ax\":\"x\"}",
		"\xef\xbb\xbf{" + base + "}",
		"{" + base + ",\"x\xff\":\"\xff\"}",
		`{` + base + `} {}`,
		` {` + "\t" + base + "\r\n" + ` } `,
		`{` + base + `,"prevResult":null}`,
		`{` + base + `,"prevResult":[]}`,
		`{` + base + `,"prevResult": { "cniVersion" : "1.0.0" , "ips":[{"address":"10.0.0.1/32"}] } }`,
		`{` + base + `,"prevResult":{"a":"}"},"prevresult":{}}`,
		`{` + base + `,"runtimeConfig":null}`,
		`{` + base + `,"runtimeConfig":{"portMappings":[{"hostPort":80}]}}`,
		`{` + base + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":null}}`,
		`{` + base + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{}}}`,
		`{` + base + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"a":1}}}`,
		`{` + base + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"a":null}}}`,
		`{` + base + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"k8s.amazonaws.com/nicConfig":"multi-nic-attachment"}}}`,
		`{` + base + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"k8s.amazonaws.com/nicConfig":"a","k8s.amazonaws.com/nicConfig":"b"}}}`,
		`{` + base + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"k8s.amazonaws.com/nicconfig":"multi-nic-attachment"}}}`,
		`{` + base + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"k8s.amazonaws.com\/nicConfig":"multi-nic-attachment"}}}`,
		`{` + base + `,"runtimeConfig":{"IO.kubernetes.cri.pod-annotations":{"k8s.amazonaws.com/nicConfig":"multi-nic-attachment"}}}`,
		`{` + base + `,"runtimeConfig":{},"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{}}}`,
		`{` + base + `,"RuntimeConfig":{}}`,
		`{"cniVersion":`,
		`[]`,
		`null`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, ok := scanNetConf(in)
		if !ok {
			return
		}
		var want netConf
		if err := json.Unmarshal(in, &want); err != nil {
			t.Fatalf("scanNetConf took %q, which encoding/json refuses: %v", in, err)
		}
		// The plugin reads one annotation; scanNetConf keeps only it.
		if ann := want.RuntimeConfig.PodAnnotations; ann != nil {
			want.RuntimeConfig.PodAnnotations = map[string]string{}
			if v, present := ann[nicConfigKey]; present {
				want.RuntimeConfig.PodAnnotations[nicConfigKey] = v
			}
		}
		if len(want.RawPrevResult) == 0 {
			want.RawPrevResult = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("scanNetConf(%q) = %+v, encoding/json %+v", in, got, want)
		}
	})
}

// TestScanNetConfCoversEveryField: scanNetConf fills netConf member by
// member, so a field added to netConf (or to its runtimeConfig) that it
// does not know would be silently left empty on the fast path while
// encoding/json fills it.
func TestScanNetConfCoversEveryField(t *testing.T) {
	scanned := map[string]bool{prevResultKey: true, runtimeConfigKey: true}
	for k := range (&netConf{}).stringFields() {
		scanned[k] = true
	}
	check := func(typ reflect.Type, scanned map[string]bool) {
		t.Helper()
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if !scanned[name] {
				t.Errorf("netConf field %s (json %q) is not read by scanNetConf", typ.Field(i).Name, name)
			}
		}
	}
	check(reflect.TypeFor[netConf](), scanned)
	rc, _ := reflect.TypeFor[netConf]().FieldByName("RuntimeConfig")
	check(rc.Type, map[string]bool{podAnnotationsCap: true})
}
