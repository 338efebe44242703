package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedAddRefusesBadNetNS: an ADD whose CNI_NETNS is the node's
// own namespace (the plugin's), a file that is no namespace or a path
// that does not exist fails naming CNI_NETNS before anything is made: the
// node's links, addresses, routes (its default routes above all), IPv6
// setting and nat rules stay as they were, and no egress address is
// held. The CNI library refuses the node's namespace only after the
// plugin ran, by which time an IPv4 egress ADD had replaced the node's
// default route by one through its own v4if0.
func TestPrivilegedAddRefusesBadNetNS(t *testing.T) {
	tp := newTopo(t)
	notNS := filepath.Join(t.TempDir(), "plain-file")
	if err := os.WriteFile(notNS, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, v6 := range []bool{false, true} {
		nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, v6)
		disabledBefore := nodeSysctl(t, tp, "net/ipv6/conf/eth0/disable_ipv6")
		for _, netns := range []string{tp.node.Path(), "/proc/self/ns/net", notNS, "/var/run/netns/vpccni-egress-absent"} {
			e := execPlugin(t, tp, "ADD", "ctr-bad", netns, os.Getenv("PATH"), tp.egressEntry(v6, ""))
			if e == nil || e.Code != types.ErrInvalidNetNS {
				t.Errorf("v6=%v ADD with CNI_NETNS %s: %v, want code %d naming CNI_NETNS", v6, netns, e, types.ErrInvalidNetNS)
			} else if want := "CNI_NETNS"; !strings.Contains(e.Error(), want) {
				t.Errorf("v6=%v ADD with CNI_NETNS %s: %q does not name %s", v6, netns, e.Error(), want)
			}
			wantLines(t, "node after the ADD into "+netns, snapshot(t, tp.node.Path()), nodeBefore)
			wantLines(t, "nat after the ADD into "+netns, tp.nat(t, v6), natBefore)
			if got := nodeSysctl(t, tp, "net/ipv6/conf/eth0/disable_ipv6"); got != disabledBefore {
				t.Errorf("node eth0 disable_ipv6 %q after the ADD into %s, was %q", got, netns, disabledBefore)
			}
			dir := "egress-v4-ipam"
			if v6 {
				dir = "egress-v6-ipam"
			}
			if held := storeEntries(t, filepath.Join(tp.dataDir, dir)); len(held) != 0 {
				t.Errorf("addresses held after the ADD into %s: %v", netns, held)
			}
		}
	}
}

// nodeSysctl reads key under /proc/sys in the node's namespace.
func nodeSysctl(t *testing.T, tp *topo, key string) string {
	t.Helper()
	var b []byte
	err := tp.inNode(func() error {
		var err error
		b, err = os.ReadFile(filepath.Join("/proc/sys", key))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPrivilegedDelPrevResultNotAnObject: a DEL whose prevResult is no
// JSON object (egress-cni's DEL never reads it) succeeds and removes the
// pod's egress veth, SNAT chain and address; it used to fail decoding the
// whole netconf, so the runtime would retry it for ever with the address
// held. An ADD with such a prevResult fails with code 6 naming it.
func TestPrivilegedDelPrevResultNotAnObject(t *testing.T) {
	tp := newTopo(t)
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, false)
	l := list(t, "1.0.0", loopbackEntry, tp.egressEntry(false, ""))
	for i, prev := range []any{"garbage", []any{1, "x"}} {
		pod := testutil.NewNS(t)
		id := fmt.Sprintf("ctr-prev-%d", i)
		add(t, tp, l, runtimeConf(id, pod.Path()))
		conf, err := entryConf(tp.egressEntry(false, ""), "1.0.0", "aws-cni")
		if err != nil {
			t.Fatal(err)
		}
		conf["prevResult"] = prev
		if e := execConf(t, tp, "ADD", id+"-again", pod.Path(), os.Getenv("PATH"), conf); e == nil || e.Code != types.ErrDecodingFailure || !strings.Contains(e.Error(), "prevResult") {
			t.Errorf("ADD with prevResult %v: %v, want code %d naming prevResult", prev, e, types.ErrDecodingFailure)
		}
		for range 2 {
			if e := execConf(t, tp, "DEL", id, pod.Path(), os.Getenv("PATH"), conf); e != nil {
				t.Fatalf("DEL with prevResult %v: %v", prev, e)
			}
		}
		wantLines(t, "nat after DEL", tp.nat(t, false), natBefore)
		if held := storeEntries(t, filepath.Join(tp.dataDir, "egress-v4-ipam")); len(held) != 0 {
			t.Errorf("addresses held after DEL: %v", held)
		}
		wantLines(t, "node after DEL", snapshot(t, tp.node.Path()), nodeBefore)
	}
}
