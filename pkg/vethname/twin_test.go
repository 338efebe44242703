package vethname

import "testing"

func TestTwin(t *testing.T) {
	tests := []struct {
		pod       string
		index     int
		twinPod   string
		twinIndex int
		ok        bool
	}{
		{"x", 1, "x.1", 0, true},
		{"x", 12, "x.12", 0, true},
		{"x.1", 0, "x", 1, true},
		{"web.v2.3", 0, "web.v2", 3, true},
		{"x.1", 2, "x.1.2", 0, true},
		{"x", 0, "", 0, false},
		{"x.01", 0, "", 0, false},
		{"x.0", 0, "", 0, false},
		{"x.-1", 0, "", 0, false},
		{"x.", 0, "", 0, false},
		{".1", 0, "", 0, false},
		{"x.v1", 0, "", 0, false},
	}
	for _, tc := range tests {
		pod, index, ok := Twin(tc.pod, tc.index)
		if pod != tc.twinPod || index != tc.twinIndex || ok != tc.ok {
			t.Errorf("Twin(%q, %d) = %q, %d, %v, want %q, %d, %v", tc.pod, tc.index, pod, index, ok, tc.twinPod, tc.twinIndex, tc.ok)
			continue
		}
		// A twin is one exactly when the names collide.
		if ok {
			for _, prefix := range []string{"eni", "vlan"} {
				if a, b := HostVethName(prefix, "default", tc.pod, tc.index), HostVethName(prefix, "default", pod, index); a != b {
					t.Errorf("%s interface %d is %s, its twin %s interface %d is %s", tc.pod, tc.index, a, pod, index, b)
				}
			}
		}
	}
}
