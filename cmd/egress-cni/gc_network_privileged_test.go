package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// namedList is a conflist named name: loopback, then the egress entry.
func namedList(t *testing.T, name, entry string) *libcni.NetworkConfigList {
	t.Helper()
	l, err := libcni.ConfListFromBytes(fmt.Appendf(nil, `{"cniVersion":"1.0.0","name":%q,"plugins":[%s,%s]}`, name, loopbackEntry, entry))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// gcNetwork runs egress-cni GC for network name with entry and the
// runtime's valid attachments (containerID/eth0 each).
func gcNetwork(t *testing.T, tp *topo, name, entry string, valid ...string) {
	t.Helper()
	if out, err := runGC(tp, entry, name, onEth0(valid...)...); err != nil {
		t.Fatalf("GC of %s: %v: %s", name, err, out)
	}
}

// heldBy lists the owners (containerID) of the addresses network's store
// holds.
func heldBy(t *testing.T, dir, network string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, network))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.Name() == "lock" || strings.HasPrefix(e.Name(), "last_reserved_ip") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, network, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		owner, _, _ := strings.Cut(string(b), "\r\n")
		out = append(out, owner)
	}
	slices.Sort(out)
	return out
}

// TestPrivilegedGCIsPerNetwork: two networks chain egress-cni (multus:
// net-a and net-b, one pod in each). CNI GC is per network: GC of net-a
// listing no net-b attachment leaves net-b's pod wired (address, SNAT
// chain and jump, host veth) and working; each network's GC then removes
// its own stale pods, and nothing is left once both have run.
func TestPrivilegedGCIsPerNetwork(t *testing.T) {
	tp := newTopo(t)
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, false)
	entryA, entryB := tp.egressEntry(false, ""), tp.egressEntry(false, "169.254.176.0/22")
	pods := map[string]ns.NetNS{"ctr-a": testutil.NewNS(t), "ctr-b": testutil.NewNS(t)}
	add(t, tp, namedList(t, "net-a", entryA), runtimeConf("ctr-a", pods["ctr-a"].Path()))
	add(t, tp, namedList(t, "net-b", entryB), runtimeConf("ctr-b", pods["ctr-b"].Path()))
	dataDir := filepath.Join(tp.dataDir, "egress-v4-ipam")

	// wired reports what of id's egress wiring (in network) exists.
	wired := func(network, id string) string {
		veth, chain := egress.HostVethName(id, "eth0"), egress.ChainName(egress.V4, network, id)
		var have []string
		if slices.Contains(heldBy(t, dataDir, network), id) {
			have = append(have, "address")
		}
		nat := tp.nat(t, false)
		if slices.Contains(nat, "-N "+chain) {
			have = append(have, "chain")
		}
		if slices.ContainsFunc(nat, func(l string) bool {
			return strings.HasPrefix(l, "-A POSTROUTING") && strings.HasSuffix(l, "-j "+chain)
		}) {
			have = append(have, "jump")
		}
		if slices.ContainsFunc(snapshot(t, tp.node.Path()), func(l string) bool { return strings.HasPrefix(l, "link "+veth+" ") }) {
			have = append(have, "veth")
		}
		return strings.Join(have, ",")
	}
	const all = "address,chain,jump,veth"
	works := func(id string) {
		t.Helper()
		if src, err := seenFrom(pods[id], tp.internet, internetV4); err != nil || src != nodeV4 {
			t.Errorf("%s's egress: seen from %q (%v), want the node's %s", id, src, err, nodeV4)
		}
	}
	for _, p := range [][2]string{{"net-a", "ctr-a"}, {"net-b", "ctr-b"}} {
		if got := wired(p[0], p[1]); got != all {
			t.Fatalf("after ADD %s in %s has %q, want %q", p[1], p[0], got, all)
		}
	}

	gcNetwork(t, tp, "net-a", entryA, "ctr-a")
	for _, p := range [][2]string{{"net-a", "ctr-a"}, {"net-b", "ctr-b"}} {
		if got := wired(p[0], p[1]); got != all {
			t.Errorf("GC of net-a (ctr-a valid): %s in %s has %q, want %q", p[1], p[0], got, all)
		}
	}
	works("ctr-a")
	works("ctr-b")

	gcNetwork(t, tp, "net-a", entryA)
	if got := wired("net-a", "ctr-a"); got != "" {
		t.Errorf("GC of net-a (none valid): ctr-a in net-a still has %q", got)
	}
	if got := wired("net-b", "ctr-b"); got != all {
		t.Errorf("GC of net-a (none valid): ctr-b in net-b has %q, want %q", got, all)
	}
	works("ctr-b")

	gcNetwork(t, tp, "net-b", entryB)
	wantLines(t, "node after both GCs", snapshot(t, tp.node.Path()), nodeBefore)
	wantLines(t, "nat after both GCs", tp.nat(t, false), natBefore)
}
