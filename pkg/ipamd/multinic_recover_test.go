package ipamd

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// recoveredMultiNICPod runs a multi-NIC pod (default/pod-0, sandbox-1),
// then restarts ipamd with both cards' checkpoints unreadable, so each
// card recovers the pod's address from its veth's route.
func recoveredMultiNICPod(t *testing.T) (*harness, *fakeLinks, []netip.Addr) {
	t.Helper()
	links := newFakeLinks()
	h := newHarness(t, harnessOpts{instanceType: "c6in.32xlarge", links: links, cfg: func(c *config.Config) {
		c.EnableMultiNIC, c.WarmIPTarget, c.IPCooldown = true, 2, 0
	}})
	ctx := context.Background()
	h.settle()
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "sandbox-1", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "pod-0", RequiresMultiNicAttachment: true})
	if err != nil || len(r.IpAllocationMetadata) != 2 {
		t.Fatalf("multi-NIC ADD: %v %v", r, err)
	}
	var addrs []netip.Addr
	for i, m := range r.IpAllocationMetadata {
		a := netip.MustParseAddr(m.Ipv4Addr)
		addrs = append(addrs, a)
		name := vethname.HostVethName("eni", "default", "pod-0", i)
		links.routes = append(links.routes, PodRoute{Addr: a, Link: name})
		links.set[name[len(name)-vethname.SuffixLen:]] = true
	}

	// Stop (the logs are folded), then both cards' files are unreadable.
	h.n.cards.close(h.n.log)
	for _, card := range []int{0, 1} {
		path := datastore.CheckpointPath(h.cfg.BackingStore, card)
		logs, _ := filepath.Glob(path + ".log.*")
		for _, l := range logs {
			if err := os.Remove(l); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(path, []byte(`{"version":"vpc-cni-ipam/1","allocations":[{"ipv4":`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h.connect(fastTimes)
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if got := h.pool(0).Stats.Pods + h.pool(1).Stats.Pods; got != 2 {
		t.Fatalf("recovered %d addresses, want the pod's 2", got)
	}
	return h, links, addrs
}

// TestMultiNICRecoveredPodReleasedByItsDEL: a multi-NIC pod's address on
// card 1 is routed through its second host veth, named after
// "<ns>.<pod>.1", not after "<ns>.<pod>". After both cards' checkpoints
// turn out unreadable, each card recovers the pod's address keyed by the
// veth it is routed to; the pod's DEL (its sandbox unknown) must lead to
// both being released (once the veths are gone: claimRecovered), not
// card 0's alone.
func TestMultiNICRecoveredPodReleasedByItsDEL(t *testing.T) {
	h, links, addrs := recoveredMultiNICPod(t)
	ctx := context.Background()
	d, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "sandbox-1", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "pod-0"})
	if len(d.GetIpAllocationMetadata()) != 0 {
		t.Fatalf("DEL released %v (err %v) before the veths went", d.GetIpAllocationMetadata(), err)
	}
	// The sandbox goes, its veths with it: the next sweep releases both.
	for i := range 2 {
		delete(links.set, vethname.HostVethName("", "default", "pod-0", i)) // no prefix: the suffix
	}
	if err := h.n.orphans.sweep(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	for card := range 2 {
		if n := h.pool(card).Stats.Pods; n != 0 {
			t.Errorf("card %d still holds %d addresses after the pod's DEL and a sweep (recovered %v)", card, n, addrs)
		}
	}
	h.checkConsistent()
}

// TestMultiNICRecoveredVethOfANewPod: the orphan sweep judges an address
// recovered on card 1 by the veth it was routed to ("<ns>.<pod>.1"). A
// same-named pod back at once (a StatefulSet's) brings a veth of that
// name again; its own card-1 address makes it that veth's owner, so the
// recovered one is released, not vouched for by the new pod's veth
// forever.
func TestMultiNICRecoveredVethOfANewPod(t *testing.T) {
	h, _, addrs := recoveredMultiNICPod(t)
	ctx := context.Background()
	if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "sandbox-1", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "pod-0"}); err == nil {
		// Releasing nothing, ipamd answers "unknown pod"; success means
		// it released an address.
		t.Fatal("the DEL released an address recovered by veth name")
	}
	h.settle()
	if _, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "sandbox-2", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "pod-0", RequiresMultiNicAttachment: true}); err != nil {
		t.Fatal(err)
	}
	if err := h.n.orphans.sweep(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if rk := datastore.RecoveredKey(vethname.HostVethName("", "default", "pod-0", i)); h.holds(rk) {
			t.Errorf("interface %d's recovered address still held after its pod's DEL and a sweep (recovered %v)", i, addrs)
		}
	}
	for card := range 2 {
		if n := h.pool(card).Stats.Pods; n != 1 {
			t.Errorf("card %d holds %d addresses, want the new sandbox's alone", card, n)
		}
	}
	h.checkConsistent()
}
