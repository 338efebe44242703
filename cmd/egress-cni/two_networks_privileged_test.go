package main

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedTwoNetworksOnePod: a pod attached to two networks that
// both chain egress-cni (eth0 in net-a, net1 in net-b). The pod has one
// v4if0 and one default route for the family, so the second attachment's
// ADD fails (code 103, naming the interface), as upstream's does, and
// neither that ADD, its undo nor its DEL takes net-a's egress away.
func TestPrivilegedTwoNetworksOnePod(t *testing.T) {
	tp := newTopo(t)
	entry := tp.egressEntry(false, "")
	la, lb := namedList(t, "net-a", entry), namedList(t, "net-b", entry)
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
	intact("after net-b's ADD")
	del(t, tp, lb, rtB)
	intact("after net-b's DEL")
	del(t, tp, la, rtA)
	if got := only(snapshot(t, pod.Path()), "v4if0"); len(got) != 0 {
		t.Errorf("pod after both DELs still has %v", got)
	}
}
