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
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// sweepPast runs the orphan sweep at now and again past the grace period
// (every allocation is then older than the grace too).
func sweepPast(t *testing.T, h *harness) {
	t.Helper()
	ctx := context.Background()
	t0 := time.Now().Add(h.n.orphans.grace + time.Minute)
	for _, at := range []time.Duration{0, h.n.orphans.grace + time.Second, 3 * h.n.orphans.grace} {
		if err := h.n.orphans.sweep(ctx, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOrphanSweepTrustsSandboxMark: a pod runs as sandbox-1; an ADD of
// sandbox-2 for a pod of the same name (the pod force-deleted and back at
// once) took an address, failed in the plugin before it touched the host
// veth, and its DEL reached no ipamd. The host veth is still sandbox-1's
// and carries its mark. The sweep keeps the running sandbox's address and
// releases the failed ADD's, though the failed ADD's is the newer.
func TestOrphanSweepTrustsSandboxMark(t *testing.T) {
	links := newFakeLinks()
	times := fastTimes
	times.OrphanGrace = time.Minute
	h := newHarness(t, harnessOpts{links: links, times: &times})
	h.settle()
	ctx := context.Background()
	add := func(container string) datastore.Key {
		t.Helper()
		k := datastore.Key{NetworkName: "aws-cni", ContainerID: container, IfName: "eth0"}
		if _, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: k.NetworkName, ContainerId: k.ContainerID,
			IfName: k.IfName, K8SPodNamespace: "default", K8SPodName: "web-0"}); err != nil {
			t.Fatal(err)
		}
		return k
	}
	running := add("sandbox-1")
	sfx := vethname.Suffix("default", "web-0")
	links.mark(sfx, running.ContainerID)
	failed := add("sandbox-2")

	sweepPast(t, h)
	if !h.holds(running) {
		t.Errorf("the running sandbox %s, whose mark its host veth carries, lost its address", running.ContainerID)
	}
	if h.holds(failed) {
		t.Errorf("the failed ADD of %s still holds an address after the grace period", failed.ContainerID)
	}
	h.checkConsistent()
}

// TestOrphanSweepMarkOfALongSandboxID: a container id too long for the
// alias is marked by its head and a hash of the whole id; the sweep knows
// the sandbox by that mark too.
func TestOrphanSweepMarkOfALongSandboxID(t *testing.T) {
	links := newFakeLinks()
	times := fastTimes
	times.OrphanGrace = time.Minute
	h := newHarness(t, harnessOpts{links: links, times: &times})
	h.settle()
	ctx := context.Background()
	long := make([]byte, 250) // past the alias's 255 bytes with the prefix, within the 256 an id may have
	for i := range long {
		long[i] = 'a' + byte(i%26)
	}
	k := datastore.Key{NetworkName: "aws-cni", ContainerID: string(long), IfName: "eth0"}
	if _, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: k.NetworkName, ContainerId: k.ContainerID,
		IfName: k.IfName, K8SPodNamespace: "default", K8SPodName: "web-0"}); err != nil {
		t.Fatal(err)
	}
	sfx := vethname.Suffix("default", "web-0")
	links.mark(sfx, k.ContainerID)
	sweepPast(t, h)
	if !h.holds(k) {
		t.Error("a running sandbox with a long container id lost its address")
	}
}

// TestOrphanSweepKeepsMultiNICPodAfterOneCardRecovered: a multi-NIC pod
// runs; ipamd restarts and only card 0's checkpoint is unreadable, so
// card 0's address is recovered from the host (stamped at the restart)
// while card 1 restores the pod's own allocation. Both addresses are the
// running pod's: the sweep keeps both, marked veths or not.
func TestOrphanSweepKeepsMultiNICPodAfterOneCardRecovered(t *testing.T) {
	for _, marked := range []bool{false, true} {
		t.Run(map[bool]string{false: "unmarked", true: "marked"}[marked], func(t *testing.T) {
			links := newFakeLinks()
			times := fastTimes
			times.OrphanGrace = time.Minute
			h := newHarness(t, harnessOpts{instanceType: "c6in.32xlarge", links: links, times: &times, cfg: func(c *config.Config) {
				c.EnableMultiNIC, c.WarmIPTarget, c.IPCooldown = true, 2, 0
			}})
			ctx := context.Background()
			h.settle()
			k := datastore.Key{NetworkName: "aws-cni", ContainerID: "sandbox-1", IfName: "eth0"}
			r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: k.NetworkName, ContainerId: k.ContainerID, IfName: k.IfName,
				K8SPodNamespace: "default", K8SPodName: "pod-0", RequiresMultiNicAttachment: true})
			if err != nil || len(r.IpAllocationMetadata) != 2 {
				t.Fatalf("multi-NIC ADD: %v %v", r, err)
			}
			var addrs []netip.Addr
			for i, m := range r.IpAllocationMetadata {
				a := netip.MustParseAddr(m.Ipv4Addr)
				addrs = append(addrs, a)
				name := vethname.HostVethName("eni", "default", "pod-0", i)
				sfx := name[len(name)-vethname.SuffixLen:]
				links.routes = append(links.routes, PodRoute{Addr: a, Link: name})
				if marked {
					links.mark(sfx, k.ContainerID)
				} else {
					links.set[sfx] = true
				}
			}
			h.n.cards.close(h.n.log)
			path := datastore.CheckpointPath(h.cfg.BackingStore, 0)
			logs, _ := filepath.Glob(path + ".log.*")
			for _, l := range logs {
				if err := os.Remove(l); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(path, []byte(`{"version":"vpc-cni-ipam/1","allocations":[{"ipv4":`), 0o644); err != nil {
				t.Fatal(err)
			}
			h.connect(times)
			if err := h.n.Init(ctx); err != nil {
				t.Fatal(err)
			}
			if !h.holds(datastore.RecoveredKey(vethname.Suffix("default", "pod-0"))) || !h.holds(k) {
				t.Fatalf("after the restart: card 0 recovered=%v, card 1 restored=%v; want both",
					h.holds(datastore.RecoveredKey(vethname.Suffix("default", "pod-0"))), h.holds(k))
			}
			sweepPast(t, h)
			for card := range 2 {
				if n := h.pool(card).Stats.Pods; n != 1 {
					t.Errorf("card %d holds %d addresses after the grace period, want the running pod's (addresses %v)", card, n, addrs)
				}
			}
			h.checkConsistent()
		})
	}
}

// TestOrphanSweepReleasesForAMarkedVethOfAnAddresslessSandbox: web-0 ran
// as a regular pod (sandbox-1, an address from the pool); its DEL reached
// no ipamd, and the pod came back as a branch-ENI pod (sandbox-2), which
// holds no address in ipamd but has a host veth of the same name suffix,
// marked as sandbox-2's. sandbox-1's address is released after the grace
// period; before, being the only allocation of the name, it was taken to
// own the veth and kept for as long as the new pod ran.
func TestOrphanSweepReleasesForAMarkedVethOfAnAddresslessSandbox(t *testing.T) {
	links := newFakeLinks()
	times := fastTimes
	times.OrphanGrace = time.Minute
	h := newHarness(t, harnessOpts{links: links, times: &times})
	h.settle()
	k := datastore.Key{NetworkName: "aws-cni", ContainerID: "sandbox-1", IfName: "eth0"}
	if _, err := h.srv.AddNetwork(context.Background(), &rpc.AddNetworkRequest{NetworkName: k.NetworkName, ContainerId: k.ContainerID,
		IfName: k.IfName, K8SPodNamespace: "default", K8SPodName: "web-0"}); err != nil {
		t.Fatal(err)
	}
	sfx := vethname.Suffix("default", "web-0")
	links.mark(sfx, "sandbox-2")
	sweepPast(t, h)
	if h.holds(k) {
		t.Error("the replaced sandbox still holds its address while the veth of its name is another sandbox's")
	}
	h.checkConsistent()
}

// TestOrphanSweepKeepsASandboxBesideAnotherMarkedVethOfItsName: web-0
// runs as a regular pod (sandbox-2, an address from the pool) whose host
// veth eni… is marked as its own, while a link of the same name suffix
// remains from an earlier pod web-0 (force-deleted; its sandbox-1 still
// exists as a branch-ENI pod in strict mode: vlan…, marked sandbox-1's).
// The kernel may list the earlier link last (it lists links by ifindex
// hash bucket on 5.10 and 6.1). The running sandbox keeps its address as
// long as any link of its name carries its mark.
func TestOrphanSweepKeepsASandboxBesideAnotherMarkedVethOfItsName(t *testing.T) {
	links := newFakeLinks()
	times := fastTimes
	times.OrphanGrace = time.Minute
	h := newHarness(t, harnessOpts{links: links, times: &times})
	h.settle()
	k := datastore.Key{NetworkName: "aws-cni", ContainerID: "sandbox-2", IfName: "eth0"}
	if _, err := h.srv.AddNetwork(context.Background(), &rpc.AddNetworkRequest{NetworkName: k.NetworkName, ContainerId: k.ContainerID,
		IfName: k.IfName, K8SPodNamespace: "default", K8SPodName: "web-0"}); err != nil {
		t.Fatal(err)
	}
	sfx := vethname.Suffix("default", "web-0")
	links.mark(sfx, "sandbox-2")
	links.mu.Lock()
	links.more = map[string][]string{sfx: {podnet.SandboxMark("sandbox-1")}}
	links.mu.Unlock()
	sweepPast(t, h)
	if !h.holds(k) {
		t.Error("the running sandbox lost its address though its host veth carries its mark (another link of its name carries an earlier sandbox's)")
	}
	h.checkConsistent()
}
