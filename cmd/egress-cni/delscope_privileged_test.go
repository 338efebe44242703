package main

import (
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedDelTouchesOnlyItsAttachment: a DEL a confused or hostile
// runtime sends with the wrong CNI_IFNAME (the egress interface's own
// name) or the wrong CNI_NETNS (another pod's namespace, the node's own)
// succeeds and leaves every other attachment as it was: the wired pod
// keeps its egress link, SNAT chain and address, and another pod's
// interface that happens to bear the egress interface's name stays. The
// DEL used to remove the wired pod's SNAT chain (keyed by the container
// alone) and delete the other pod's interface (any link of that name that
// no egress veth of another attachment owned). The pod's own DEL still
// removes everything.
func TestPrivilegedDelTouchesOnlyItsAttachment(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		tp := newTopo(t)
		f := egress.V4
		if v6 {
			f = egress.V6
		}
		entry := tp.egressEntry(v6, "")
		l := list(t, "1.0.0", tp.ptpEntry(!v6), entry)
		natBefore := tp.nat(t, v6)
		a := testutil.NewNS(t)
		rt := runtimeConf("ctr-a", a.Path())
		add(t, tp, l, rt)

		// Pod b's interface of the egress interface's name is another
		// plugin's (a secondary network without egress-cni).
		b := testutil.NewNS(t)
		err := b.Do(func(ns.NetNS) error {
			if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: f.PodIfName()}, PeerName: "peer0"}); err != nil {
				return err
			}
			return configure(f.PodIfName(), []string{map[bool]string{false: "10.77.0.5/24", true: "2001:db8:77::5/64"}[v6]}, nil)
		})
		if err != nil {
			t.Fatal(err)
		}
		store := tp.storeDir(v6)
		aBefore, bBefore, nodeBefore := snapshot(t, a.Path()), snapshot(t, b.Path()), snapshot(t, tp.node.Path())
		natWired, heldWired := tp.nat(t, v6), storeEntries(t, store)

		for _, d := range []struct{ id, netns, ifname string }{
			{"ctr-a", a.Path(), f.PodIfName()},
			{"ctr-a", b.Path(), f.PodIfName()},
			{"ctr-x", b.Path(), "eth0"},
			{"ctr-x", tp.node.Path(), "eth0"},
			{"ctr-x", b.Path(), f.PodIfName()},
		} {
			// The CNI library refuses the node's own namespace after the
			// plugin ran; what matters is that the plugin changed nothing.
			if e := execIf(t, tp, "DEL", d.id, d.netns, d.ifname, entry); e != nil && d.netns != tp.node.Path() {
				t.Errorf("v6=%v DEL %+v: %v", v6, d, e)
			}
			wantLines(t, "pod a after DEL "+d.id+"/"+d.ifname, snapshot(t, a.Path()), aBefore)
			wantLines(t, "pod b after DEL "+d.id+"/"+d.ifname, snapshot(t, b.Path()), bBefore)
			wantLines(t, "node after DEL "+d.id+"/"+d.ifname, snapshot(t, tp.node.Path()), nodeBefore)
			wantLines(t, "nat after DEL "+d.id+"/"+d.ifname, tp.nat(t, v6), natWired)
			wantLines(t, "store after DEL "+d.id+"/"+d.ifname, storeEntries(t, store), heldWired)
		}

		del(t, tp, l, rt)
		wantLines(t, "nat after the pod's DEL", tp.nat(t, v6), natBefore)
		if held := storeEntries(t, store); len(held) != 0 {
			t.Errorf("v6=%v: addresses held after the pod's DEL: %v", v6, held)
		}
		wantLines(t, "pod b after the pod's DEL", snapshot(t, b.Path()), bBefore)
	}
}
