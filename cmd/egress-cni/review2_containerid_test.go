package main

import (
	"strings"
	"testing"
)

// TestReview2LongNetworkNameBlamesContainerID: a network name that alone
// leaves no room in the SNAT comment refuses every ADD naming
// CNI_CONTAINERID, with a negative "at most"; the netconf's name is the
// input at fault.
func TestReview2LongNetworkNameBlamesContainerID(t *testing.T) {
	e := checkContainerID(strings.Repeat("c", 64), strings.Repeat("n", 240))
	if e == nil {
		t.Fatal("accepted")
	}
	if strings.Contains(e.Msg, "CNI_CONTAINERID") || strings.Contains(e.Msg, "at most -") {
		t.Errorf("error blames the container ID: code %d %q", e.Code, e.Msg)
	}
}
