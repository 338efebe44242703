package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containernetworking/plugins/pkg/testutils"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedV6AddDelTwice: IPv6 egress for an IPv4 pod, ADD twice
// (the runtime repeating it) keeps one address, one veth and exactly one
// SNAT chain and jump; DEL twice, and DEL twice after the runtime removed
// the namespace, leave the node's links, routes and ip6tables nat table as
// they were and no address held.
func TestPrivilegedV6AddDelTwice(t *testing.T) {
	tp := newTopo(t)
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, true)
	l := list(t, "1.0.0", tp.ptpEntry(false), tp.egressEntry(true, ""))
	store := filepath.Join(tp.dataDir, "egress-v6-ipam")

	pod := testutil.NewNS(t)
	rt := runtimeConf("ctr-v6-twice", pod.Path())
	add(t, tp, l, rt)
	// The repeated ADD runs egress-cni alone: ptp refuses a second ADD.
	if e := execPlugin(t, tp, "ADD", rt.ContainerID, pod.Path(), os.Getenv("PATH"), tp.egressEntry(true, "")); e != nil {
		t.Fatalf("repeated ADD: %v", e)
	}
	chain := egress.ChainName(egress.V6, "aws-cni", rt.ContainerID)
	wantLines(t, "ip6 nat after two ADDs", only(tp.nat(t, true), "CNI-E6-"), natLines("aws-cni", rt.ContainerID, chain, "fd00::ac:2/128", nodeV6, "ff00::/8"))
	hostVeth := egress.HostVethName(rt.ContainerID, "eth0")
	wantLines(t, "node egress state after two ADDs", only(snapshot(t, tp.node.Path()), hostVeth), []string{
		"link " + hostVeth + " veth up mtu 9001",
		"route main fd00::ac:2/128 dev " + hostVeth,
	})
	if held := storeEntries(t, store); len(held) != 1 {
		t.Errorf("addresses held after two ADDs: %v, want one", held)
	}
	if err := tp.inNode(func() error { return tp.cni(t).CheckNetworkList(ctx, l, rt) }); err != nil {
		t.Errorf("CHECK after two ADDs: %v", err)
	}
	del(t, tp, l, rt)
	del(t, tp, l, rt)
	wantLines(t, "node after DEL", snapshot(t, tp.node.Path()), nodeBefore)
	wantLines(t, "ip6 nat after DEL", tp.nat(t, true), natBefore)

	gone, err := testutils.NewNS()
	if err != nil {
		t.Fatal(err)
	}
	// Removed here too if the test fails before it removes it itself.
	t.Cleanup(func() { _ = gone.Close(); _ = testutils.UnmountNS(gone) })
	rt = runtimeConf("ctr-v6-gone", gone.Path())
	add(t, tp, l, rt)
	_ = gone.Close()
	if err := testutils.UnmountNS(gone); err != nil {
		t.Fatal(err)
	}
	del(t, tp, l, rt)
	del(t, tp, l, rt)
	wantLines(t, "node after DEL with the namespace gone", snapshot(t, tp.node.Path()), nodeBefore)
	wantLines(t, "ip6 nat after DEL with the namespace gone", tp.nat(t, true), natBefore)
	if held := storeEntries(t, store); len(held) != 0 {
		t.Errorf("addresses held after the DELs: %v", held)
	}
}
