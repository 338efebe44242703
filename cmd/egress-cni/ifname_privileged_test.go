package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedAddRefusesEgressIfName: a runtime whose CNI_IFNAME is the
// egress interface's own name (v4if0 for IPv4 egress, v6if0 for IPv6)
// gets the ADD refused with code 4 naming CNI_IFNAME, and the pod's main
// interface, made by the plugin before egress-cni, keeps its address. The
// ADD used to take that interface for a stale egress link, delete it (and
// with it the main plugin's node end) and succeed: the pod came up with
// only the egress address.
func TestPrivilegedAddRefusesEgressIfName(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		tp := newTopo(t)
		ifName, mainNet := "v4if0", "2001:db8:9:" // IPv4 egress: IPv6 pods
		if v6 {
			ifName, mainNet = "v6if0", "10.9.0."
		}
		l := list(t, "1.0.0", tp.ptpEntry(!v6), tp.egressEntry(v6, ""))
		pod := testutil.NewNS(t)
		rt := runtimeConf("ctr-ifname", pod.Path())
		rt.IfName = ifName

		err := tp.inNode(func() error { _, err := tp.cni(t).AddNetworkList(ctx, l, rt); return err })
		var ce *types.Error
		if !errors.As(err, &ce) || ce.Code != types.ErrInvalidEnvironmentVariables || !strings.Contains(ce.Error(), "CNI_IFNAME") {
			t.Errorf("v6=%v ADD with CNI_IFNAME=%s: %v; want code %d naming CNI_IFNAME", v6, ifName, err, types.ErrInvalidEnvironmentVariables)
		}
		var kept bool
		for _, line := range snapshot(t, pod.Path()) {
			if strings.Contains(line, ifName) && strings.Contains(line, mainNet) {
				kept = true
			}
		}
		if !kept {
			t.Errorf("v6=%v: the pod's main interface %s lost its %s address:\n%s", v6, ifName, mainNet, strings.Join(snapshot(t, pod.Path()), "\n"))
		}
		del(t, tp, l, rt)
	}
}
