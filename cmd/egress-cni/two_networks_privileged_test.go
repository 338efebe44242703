package main

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// egressAddr returns the address on v4if0 in the pod ("" for none).
func egressAddr(t *testing.T, pod ns.NetNS) string {
	t.Helper()
	for _, l := range snapshot(t, pod.Path()) {
		if a, ok := strings.CutPrefix(l, "addr v4if0 "); ok {
			return a
		}
	}
	return ""
}

// TestPrivilegedTwoNetworksSameRange: two networks chain egress-cni with
// the installer's entry, so both allocate from 169.254.172.0/22 (each in
// its own store), one pod in each. Each pod gets an address no other pod
// on the node has, its node route points at its own egress veth, and both
// pods reach the internet; DEL of both leaves the node as it was.
func TestPrivilegedTwoNetworksSameRange(t *testing.T) {
	tp := newTopo(t)
	nodeBefore, natBefore := snapshot(t, tp.node.Path()), tp.nat(t, false)
	entry := tp.egressEntry(false, "")
	la, lb := namedList(t, "net-a", entry), namedList(t, "net-b", entry)
	podA, podB := testutil.NewNS(t), testutil.NewNS(t)
	rtA, rtB := runtimeConf("ctr-a", podA.Path()), runtimeConf("ctr-b", podB.Path())
	add(t, tp, la, rtA)
	add(t, tp, lb, rtB)

	a, b := egressAddr(t, podA), egressAddr(t, podB)
	if a == "" || a == b {
		t.Errorf("egress addresses: ctr-a %q, ctr-b %q; want two different addresses", a, b)
	}
	node := snapshot(t, tp.node.Path())
	for id, addr := range map[string]string{"ctr-a": a, "ctr-b": b} {
		ip, _, _ := strings.Cut(addr, "/")
		want := "route main " + ip + "/32 dev " + egress.HostVethName(id, "eth0") + " scope link"
		if !slices.Contains(node, want) {
			t.Errorf("node lacks %q; its routes to the range: %v", want, only(node, "route main 169.254."))
		}
	}
	for id, pod := range map[string]ns.NetNS{"ctr-a": podA, "ctr-b": podB} {
		if src, err := seenFrom(pod, tp.internet, internetV4); err != nil || src != nodeV4 {
			t.Errorf("%s's egress: seen from %q (%v), want the node's %s", id, src, err, nodeV4)
		}
	}
	del(t, tp, la, rtA)
	del(t, tp, lb, rtB)
	wantLines(t, "node after DEL", snapshot(t, tp.node.Path()), nodeBefore)
	wantLines(t, "nat after DEL", tp.nat(t, false), natBefore)
}

// TestPrivilegedTwoNetworksOnePod: a pod attached twice to networks that
// chain egress-cni (eth0 in net-a, net1 in net-b, or net1 in net-a again:
// multus may attach one network twice). The pod has one v4if0 and one
// default route for the family, so the second attachment's ADD fails
// (code 103, naming the interface), as upstream's does, and neither that
// ADD, its undo nor its DEL takes eth0's egress away. In one network the
// failed ADD's undo used to remove the container's SNAT chain, which both
// attachments share: eth0's egress stopped reaching the internet.
func TestPrivilegedTwoNetworksOnePod(t *testing.T) {
	for _, second := range []string{"net-b", "net-a"} {
		t.Run(second, func(t *testing.T) { testSecondAttachment(t, second) })
	}
}

// testSecondAttachment attaches the pod to net-a (eth0) and then, as net1,
// to the network second.
func testSecondAttachment(t *testing.T, second string) {
	tp := newTopo(t)
	entry := tp.egressEntry(false, "")
	la, lb := namedList(t, "net-a", entry), namedList(t, second, entry)
	pod := testutil.NewNS(t)
	rtA := runtimeConf("ctr", pod.Path())
	rtB := runtimeConf("ctr", pod.Path())
	rtB.IfName = "net1"
	add(t, tp, la, rtA)
	vethA := egress.HostVethName("ctr", "eth0")
	intact := func(when string) {
		t.Helper()
		if !slices.ContainsFunc(snapshot(t, tp.node.Path()), func(l string) bool { return strings.HasPrefix(l, "link "+vethA+" ") }) {
			t.Errorf("%s: net-a's egress veth %s is gone", when, vethA)
		}
		if src, err := seenFrom(pod, tp.internet, internetV4); err != nil || src != nodeV4 {
			t.Errorf("%s: net-a's egress: seen from %q (%v), want the node's %s", when, src, err, nodeV4)
		}
	}

	err := tp.inNode(func() error { _, err := tp.cni(t).AddNetworkList(ctx, lb, rtB); return err })
	var ce *types.Error
	if !errors.As(err, &ce) || ce.Code != ErrWiring || !strings.Contains(ce.Error(), "v4if0") {
		t.Errorf("ADD of a second egress attachment to the pod: %v; want code %d naming v4if0", err, ErrWiring)
	}
	intact("after the second ADD")
	del(t, tp, lb, rtB)
	intact("after the second DEL")
	del(t, tp, la, rtA)
	if got := only(snapshot(t, pod.Path()), "v4if0"); len(got) != 0 {
		t.Errorf("pod after both DELs still has %v", got)
	}
}
