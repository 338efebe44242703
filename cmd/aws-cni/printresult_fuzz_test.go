package main

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzJSONStringIsMarshals: jsonString writes any string (mixed runes,
// truncated and overlong UTF-8 sequences) as json.Marshal does.
func FuzzJSONStringIsMarshals(f *testing.F) {
	for _, s := range []string{"", "/var/run/netns/cni-1234", "a<b>&c\u2028\u2029", "\xe2\x80", "\xe2\x80\xa8\xff", "\xc0\x80", "\xed\xa0\x80\xef\xbf\xbd", "\x00\x1f\x7f\"\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := jsonString(s); !bytes.Equal(got, want) {
			t.Fatalf("jsonString(%q) = %s, json.Marshal %s", s, got, want)
		}
	})
}
