package confscan

import (
	"bytes"
	"encoding/json"
	"testing"
)

// TestScanAgreesWithEncodingJSON: whatever Scan answers, encoding/json
// reads the same members and strings from the input.
func TestScanAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{}`,
		` { "cniVersion" : "1.0.0" , "name":"aws-cni" } `,
		"{\n\t\"name\": \"x\",\r\n\"mtu\": \"9001\"\n}",
		`{"name":"x","plugins":[{"a":[1,2,{"b":"}]"}]},"c":null],"d":true,"e":-1.5e3,"f":"\"}"}`,
		`{"name":"x","ipam":{"type":"host-local","ranges":[[{"subnet":"10.0.0.0/8"}]]}}`,
		`{"name":"käse","cniVersion":"1.0.0"}`,
		`{"name":"a\"b"}`,
		`{"name":"a\u0041"}`,
		`{"name":null}`,
		`{"name":1}`,
		`{"name":"x","name":"y"}`,
		`{"Name":"x"}`,
		`{"NAME":"x","name":"y"}`,
		`{"na\u006de":"x"}`,
		`{"nämé":"x"}`,
		`{"other":"x","Other":"y"}`,
		`[]`,
		`"name"`,
		`{"name":"x"`,
		`{"name":"x"} {}`,
		"{\"name\":\"\xff\"}",
		``,
	} {
		o, ok := Scan([]byte(in), "cniVersion", "name", "mtu")
		if !ok {
			continue
		}
		var raw map[string]json.RawMessage
		if err := json.Unmarshal([]byte(in), &raw); err != nil {
			t.Errorf("Scan(%q) took input encoding/json refuses: %v", in, err)
			continue
		}
		if len(raw) != len(o) {
			t.Errorf("Scan(%q) = %d members, encoding/json %d", in, len(o), len(raw))
		}
		for k, v := range raw {
			if !bytes.Equal(o[k], v) {
				t.Errorf("Scan(%q)[%q] = %s, encoding/json %s", in, k, o[k], v)
			}
		}
		var conf struct {
			CNIVersion string `json:"cniVersion"`
			Name       string `json:"name"`
			MTU        string `json:"mtu"`
		}
		if err := json.Unmarshal([]byte(in), &conf); err != nil {
			// Then one of the strings must be left to encoding/json.
			refused := false
			for _, k := range []string{"cniVersion", "name", "mtu"} {
				_, ok := o.String(k)
				refused = refused || !ok
			}
			if !refused {
				t.Errorf("Scan(%q) read every string, but encoding/json fails: %v", in, err)
			}
			continue
		}
		for k, want := range map[string]string{"cniVersion": conf.CNIVersion, "name": conf.Name, "mtu": conf.MTU} {
			if s, ok := o.String(k); ok && s != want {
				t.Errorf("Scan(%q).String(%q) = %q, encoding/json %q", in, k, s, want)
			}
		}
	}
}

// TestScanLeavesTheDoubtfulToEncodingJSON: input whose reading needs
// encoding/json's rules (case folding, repeated names, escapes, invalid
// JSON) is refused, or the string in doubt is.
func TestScanLeavesTheDoubtfulToEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"Name":"x"}`, `{"NAME":"x","name":"y"}`, `{"name":"x","name":"y"}`,
		`{"na\u006de":"x"}`, `{"nämé":"x"}`, `[]`, `{"name":"x"`, `{"name":"x"} {}`, ``,
	} {
		if _, ok := Scan([]byte(in), "cniVersion", "name"); ok {
			t.Errorf("Scan(%q) answered; want it left to encoding/json", in)
		}
	}
	for _, in := range []string{`{"name":"a\"b"}`, `{"name":"a\u0041"}`, `{"name":null}`, `{"name":1}`, `{"name":{}}`, "{\"name\":\"\xff\"}"} {
		o, ok := Scan([]byte(in), "name")
		if !ok {
			t.Errorf("Scan(%q) refused valid input", in)
			continue
		}
		if s, ok := o.String("name"); ok {
			t.Errorf("Scan(%q).String(name) = %q; want it left to encoding/json", in, s)
		}
	}
}

func TestObjectNested(t *testing.T) {
	o, ok := Scan([]byte(`{"name":"x","runtimeConfig":{"a":{"k/1":"v","k2":"{\"x\":1}"},"b":[]}}`), "name", "runtimeConfig")
	if !ok {
		t.Fatal("Scan refused")
	}
	rc, ok := o.Object("runtimeConfig", "a")
	if !ok {
		t.Fatal("runtimeConfig refused")
	}
	a, ok := rc.Object("a")
	if !ok {
		t.Fatal("a refused")
	}
	if s, ok := a.String("k/1"); !ok || s != "v" {
		t.Errorf(`a["k/1"] = %q, %v`, s, ok)
	}
	if !a.IsString("k2") || a.IsString("k3") {
		t.Errorf("IsString(k2) = %v, IsString(k3) = %v", a.IsString("k2"), a.IsString("k3"))
	}
	if _, ok := rc.Object("b"); ok {
		t.Error("an array taken for an object")
	}
	if _, ok := o.Object("missing"); ok {
		t.Error("a missing member taken for an object")
	}
	if _, ok := o.Object("runtimeConfig", "A"); ok {
		t.Error(`member "a" taken although encoding/json would match it to "A"`)
	}
}
