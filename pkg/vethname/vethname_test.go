package vethname

import "testing"

func TestHostVethName(t *testing.T) {
	tests := []struct {
		prefix, ns, pod string
		index           int
		want            string
	}{
		// Test vectors of docs/compatibility.md, "Interface names".
		{"eni", "kube-system", "coredns-57ff979f67-qqbdh", 0, "enib5faff8a083"},
		{"eni", "default", "sample-pod", 0, "enicc21c2d7785"},
		{"vlan", "default", "sample-pod", 0, "vlancc21c2d7785"},
		// Index 1 hashes "<ns>.<pod>.1", so it differs from index 0.
		{"eni", "default", "sample-pod", 1, "eni" + hash("default.sample-pod.1")},
	}
	for _, tc := range tests {
		got := HostVethName(tc.prefix, tc.ns, tc.pod, tc.index)
		if got != tc.want {
			t.Errorf("HostVethName(%q, %q, %q, %d) = %q, want %q", tc.prefix, tc.ns, tc.pod, tc.index, got, tc.want)
		}
		if len(got) > 15 {
			t.Errorf("%q is longer than IFNAMSIZ-1", got)
		}
	}
	if a, b := HostVethName("eni", "default", "sample-pod", 0), HostVethName("eni", "default", "sample-pod", 1); a == b {
		t.Errorf("index 0 and 1 share the name %q", a)
	}
}

func TestSuffixAndDummy(t *testing.T) {
	if got := Suffix("default", "sample-pod"); got != "cc21c2d7785" {
		t.Errorf("Suffix = %q, want cc21c2d7785", got)
	}
	if got := DummyName("kube-system", "coredns-57ff979f67-qqbdh"); got != "dummyb5faff8a083" {
		t.Errorf("DummyName = %q, want dummyb5faff8a083", got)
	}
}

func TestContainerIfName(t *testing.T) {
	for _, tc := range []struct {
		in    string
		index int
		want  string
	}{{"eth0", 0, "eth0"}, {"net1", 0, "net1"}, {"eth0", 1, "mNicIf1"}, {"eth0", 3, "mNicIf3"}} {
		if got := ContainerIfName(tc.in, tc.index); got != tc.want {
			t.Errorf("ContainerIfName(%q, %d) = %q, want %q", tc.in, tc.index, got, tc.want)
		}
	}
}
