package main

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// dualStackEntry wires the pod's main interface with both families (the
// reference ptp plugin), as a dual-stack main plugin would.
func (tp *topo) dualStackEntry() string {
	return fmt.Sprintf(`{"type":"ptp","ipMasq":false,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.9.0.0/24"}],[{"subnet":"2001:db8:9::/64"}]],"routes":[{"dst":"0.0.0.0/0"},{"dst":"::/0"}],"dataDir":%q}}`,
		filepath.Join(tp.dataDir, "ptp-ipam"))
}

// TestPrivilegedEgressPassesThroughPodOfSameFamily: a pod whose main plugin
// already gave it an address of the egress family has that family's
// egress: egress-cni passes the result through and makes nothing. IPv6
// egress used to set disable_ipv6=1 on the pod's main interface, removing
// its IPv6 address and route; IPv4 egress replaced the pod's IPv4 default
// route by one through v4if0.
func TestPrivilegedEgressPassesThroughPodOfSameFamily(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		tp := newTopo(t)
		l := list(t, "1.0.0", tp.dualStackEntry(), tp.egressEntry(v6, ""))
		pod := testutil.NewNS(t)
		rt := runtimeConf("ctr-dual", pod.Path())
		res := add(t, tp, l, rt)
		podAfter := snapshot(t, pod.Path())
		for _, want := range []string{"addr eth0 10.9.0.", "addr eth0 2001:db8:9:", "route main 0.0.0.0/0 via 10.9.0.1 dev eth0", "route main ::/0 via"} {
			if !slices.ContainsFunc(podAfter, func(l string) bool { return strings.HasPrefix(l, want) }) {
				t.Errorf("v6=%v: pod lacks %q after ADD:\n%s", v6, want, strings.Join(podAfter, "\n"))
			}
		}
		if got := only(podAfter, "v4if0", "v6if0"); len(got) != 0 {
			t.Errorf("v6=%v: pod has egress wiring %v though it has the family", v6, got)
		}
		if len(res.Interfaces) != 2 {
			t.Errorf("v6=%v: result has %d interfaces, want the main plugin's 2", v6, len(res.Interfaces))
		}
		dir := "egress-v4-ipam"
		if v6 {
			dir = "egress-v6-ipam"
		}
		if held := storeEntries(t, filepath.Join(tp.dataDir, dir)); len(held) != 0 {
			t.Errorf("v6=%v: addresses held: %v", v6, held)
		}
		if err := tp.inNode(func() error { return tp.cni(t).CheckNetworkList(ctx, l, rt) }); err != nil {
			t.Errorf("v6=%v: CHECK: %v", v6, err)
		}
		del(t, tp, l, rt)
	}
}
