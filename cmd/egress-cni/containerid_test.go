package main

import (
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

// TestLongNetworkNameIsRefusedAsNetconf: a network name that alone leaves
// no room for a container ID in the SNAT comment is the netconf's fault:
// code 7 naming the name, not CNI_CONTAINERID with a zero or negative
// "at most".
func TestLongNetworkNameIsRefusedAsNetconf(t *testing.T) {
	for _, n := range []int{240, 246, 300} {
		e := checkContainerID(strings.Repeat("c", 64), strings.Repeat("n", n))
		if e == nil {
			t.Fatalf("%d-character name: accepted", n)
		}
		if e.Code != types.ErrInvalidNetworkConfig || !strings.Contains(e.Msg, "netconf name") || strings.Contains(e.Msg, "CNI_CONTAINERID") {
			t.Errorf("%d-character name: code %d %q, want code %d naming the netconf name", n, e.Code, e.Msg, types.ErrInvalidNetworkConfig)
		}
	}
}
