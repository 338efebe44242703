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
	cases := append([]string{
		runtimeNetconf,
		runtimeNetconf[:len(runtimeNetconf)-1] + `,"prevResult":{"cniVersion":"0.4.0","interfaces":[{"name":"eni1"}],"ips":[{"version":"4","address":"10.0.0.1/32","interface":0}],"dns":{}}}`,
		`{` + baseNetconf + `,"vethPre\u212Ax":"x"}`, // Kelvin sign
		`{` + baseNetconf + `,"pluginLogFile":"x","\u017FluginLogFile":"y"}`,
		"{" + baseNetconf + ",\"vethPre\u212Ax\":\"x\"}",
		"\xef\xbb\xbf{" + baseNetconf + "}",
		"{" + baseNetconf + ",\"x\xff\":\"\xff\"}",
		`{` + baseNetconf + `} {}`,
		` {` + "\t" + baseNetconf + "\r\n" + ` } `,
		`{` + baseNetconf + `,"prevResult": { "cniVersion" : "1.0.0" , "ips":[{"address":"10.0.0.1/32"}] } }`,
		`{` + baseNetconf + `,"prevResult":{"a":"}"},"prevresult":{}}`,
		`{` + baseNetconf + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{}}}`,
		`{` + baseNetconf + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"a":null}}}`,
		`{` + baseNetconf + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"k8s.amazonaws.com/nicConfig":"a","k8s.amazonaws.com/nicConfig":"b"}}}`,
		`{` + baseNetconf + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"k8s.amazonaws.com/nicconfig":"multi-nic-attachment"}}}`,
		`{` + baseNetconf + `,"runtimeConfig":{},"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{}}}`,
		`null`,
		`{}`,
	}, netconfCases...)
	for _, s := range cases {
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
