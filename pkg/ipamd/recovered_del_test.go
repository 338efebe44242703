package ipamd

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestLateDELKeepsARecoveredAddress: after a corrupt checkpoint, an
// address recovered from the host is known only by the pod's veth name,
// which every sandbox of the pod shares; nothing tells which sandbox the
// DEL is for. A late DEL of an older sandbox (the CNI spec lets runtimes
// repeat DELs) must not release the address the running sandbox uses:
// the plugin would then remove that sandbox's route and rules, and the
// address would go to another pod. So a DEL naming the pod only marks
// the address, which is released at the first orphan sweep that finds
// the pod's veth gone (or now a newer sandbox's), without the grace
// period; while the veth stays, the address stays held.
func TestLateDELKeepsARecoveredAddress(t *testing.T) {
	links := newFakeLinks()
	h := newHarness(t, harnessOpts{noInit: true, links: links})
	ctx := context.Background()
	addrs, err := h.ec2.AssignIPv4(ctx, h.primaryENI(), 1)
	if err != nil {
		t.Fatal(err)
	}
	links.routes = []PodRoute{{Addr: addrs[0], Link: vethname.HostVethName("eni", "default", "pod-0", 0)}}
	links.setPod(0, true)
	if err := os.WriteFile(h.cfg.BackingStore, []byte(`{"version":"vpc-cni-ipam/1","allocations":[{"ipv4":`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	rk := datastore.RecoveredKey(vethname.Suffix("default", "pod-0"))
	if !h.holds(rk) {
		t.Fatal("the pod's address was not recovered")
	}

	// A DEL of a sandbox this ipamd never knew, for the same pod.
	d, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "older-sandbox", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "pod-0"})
	if len(d.GetIpAllocationMetadata()) != 0 {
		t.Errorf("the DEL released %v (err %v); the running sandbox's address must stay held", d.GetIpAllocationMetadata(), err)
	}
	sw := h.n.orphans // the harness runs no sweep loop: the test drives its clock
	later := time.Now().Add(time.Hour)
	for _, at := range []time.Time{later, later.Add(h.n.times.OrphanGrace)} {
		if err := sw.sweep(ctx, at); err != nil {
			t.Fatal(err)
		}
	}
	if !h.holds(rk) {
		t.Fatal("released while the pod's veth is still there")
	}

	// The pod goes: its veth with it. One sweep releases the address.
	links.setPod(0, false)
	if err := sw.sweep(ctx, later.Add(2*h.n.times.OrphanGrace)); err != nil {
		t.Fatal(err)
	}
	if h.holds(rk) {
		t.Error("still held at the first sweep after the veth went, though a DEL named the pod")
	}
	if got := counterValue(t, h.n.metrics.OrphanReleases); got != 0 {
		t.Errorf("vpccni_orphaned_addresses_released_total = %v: a DEL came, no orphan", got)
	}
	h.checkConsistent()
}
