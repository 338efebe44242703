package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedV6EgressRefusesSubIPv6MTU: an IPv6 egress ADD whose mtu
// is below IPv6's minimum of 1280 fails with code 7 naming mtu before
// anything is made; it used to create the veth, have the kernel refuse
// the ULA ("invalid argument", code 103) and undo. DEL of such a netconf
// still succeeds.
func TestPrivilegedV6EgressRefusesSubIPv6MTU(t *testing.T) {
	tp := newTopo(t)
	pod := testutil.NewNS(t)
	conf, err := chainedConf(tp.egressEntry(true, ""), pod.Path())
	if err != nil {
		t.Fatal(err)
	}
	conf["mtu"] = "1000"
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, true)

	e := execConf(t, tp, "ADD", "ctr-mtu", pod.Path(), os.Getenv("PATH"), conf)
	if e == nil || e.Code != types.ErrInvalidNetworkConfig || !strings.Contains(e.Error(), "mtu 1000") {
		t.Errorf("ADD with mtu 1000: %v, want code %d naming mtu 1000", e, types.ErrInvalidNetworkConfig)
	}
	wantLines(t, "node after the ADD", snapshot(t, tp.node.Path()), nodeBefore)
	wantLines(t, "nat after the ADD", tp.nat(t, true), natBefore)
	if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v6-ipam")); len(held) != 0 {
		t.Errorf("addresses held after the ADD: %v", held)
	}
	if got := only(snapshot(t, pod.Path()), "v6if0"); len(got) != 0 {
		t.Errorf("pod has %v after the refused ADD", got)
	}
	if e := execConf(t, tp, "DEL", "ctr-mtu", pod.Path(), os.Getenv("PATH"), conf); e != nil {
		t.Errorf("DEL: %v", e)
	}
}
