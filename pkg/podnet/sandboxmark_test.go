package podnet

import (
	"strings"
	"testing"
)

func TestSandboxMark(t *testing.T) {
	id := strings.Repeat("f", 64)
	if got, want := SandboxMark(id), "aws-cni:"+id; got != want {
		t.Errorf("SandboxMark(64 hex) = %q, want %q", got, want)
	}
	if got := SandboxMark(""); got != "" {
		t.Errorf("SandboxMark(\"\") = %q, want no mark", got)
	}
	// Ids up to the plugin's limit of 256 bytes fit the kernel's 255-byte
	// alias, and ids that differ only at the end get different marks.
	fits := strings.Repeat("a", maxAliasLen-len(sandboxMarkPrefix))
	if got := SandboxMark(fits); got != sandboxMarkPrefix+fits {
		t.Errorf("SandboxMark of a %d-byte id = %q, want it verbatim", len(fits), got)
	}
	long1, long2 := strings.Repeat("a", 255)+"1", strings.Repeat("a", 255)+"2"
	m1, m2 := SandboxMark(long1), SandboxMark(long2)
	if len(m1) > maxAliasLen || len(m2) > maxAliasLen {
		t.Errorf("marks of 256-byte ids are %d and %d bytes, want at most %d", len(m1), len(m2), maxAliasLen)
	}
	if m1 == m2 {
		t.Errorf("two 256-byte ids differing in the last byte share the mark %q", m1)
	}
	if m := SandboxMark(fits + "a"); m == SandboxMark(fits) || !strings.HasPrefix(m, sandboxMarkPrefix) {
		t.Errorf("SandboxMark of a %d-byte id = %q", len(fits)+1, m)
	}
}

func TestOtherSandbox(t *testing.T) {
	for _, c := range []struct {
		alias, sandbox string
		other          bool
	}{
		{"", "b", false},               // upstream's veth or an older plugin's
		{"set by someone", "b", false}, // not the plugin's mark
		{"aws-cni:b", "b", false},      // this sandbox's
		{"aws-cni:a", "b", true},       // another sandbox's
		{"aws-cni:a", "", true},        // a DEL without container id owns no mark
		{SandboxMark(strings.Repeat("x", 300)), strings.Repeat("x", 300), false},
	} {
		if got := otherSandbox(c.alias, c.sandbox) != ""; got != c.other {
			t.Errorf("otherSandbox(%q, %q) says other=%v, want %v", c.alias, c.sandbox, got, c.other)
		}
	}
}
