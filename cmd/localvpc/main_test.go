package main

import (
	"strings"
	"testing"
)

func TestDemoFlags(t *testing.T) {
	f, err := parseDemoFlags([]string{"-pods", "20", "-bin", "/x"})
	if err != nil || f.pods != 20 || f.binDir != "/x" {
		t.Errorf("parseDemoFlags = %+v, %v", f, err)
	}
	for _, bad := range []string{"0", "26"} {
		if _, err := parseDemoFlags([]string{"-pods", bad}); err == nil || !strings.Contains(err.Error(), "-pods "+bad) {
			t.Errorf("-pods %s: err = %v, want it to name the flag and value", bad, err)
		}
	}
}

func TestUnknownCommandIsAUsageError(t *testing.T) {
	if code := run([]string{"frobnicate"}); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if code := run(nil); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
}
