package ipamd

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// failedNewerSandbox: pod default/web-0 runs in sandbox-1 behind an
// unmarked host veth (upstream's plugin); a newer sandbox-2's ADD got an
// address from ipamd, then failed before it touched the veth, and its DEL
// reached no ipamd. It returns both keys and the running sandbox's address.
func failedNewerSandbox(t *testing.T, h *harness) (running, failed datastore.Key, addr netip.Addr) {
	t.Helper()
	h.settle()
	add := func(container string) (datastore.Key, netip.Addr) {
		t.Helper()
		k := datastore.Key{NetworkName: "aws-cni", ContainerID: container, IfName: "eth0"}
		r, err := h.srv.AddNetwork(context.Background(), &rpc.AddNetworkRequest{NetworkName: k.NetworkName, ContainerId: k.ContainerID,
			IfName: k.IfName, K8SPodNamespace: "default", K8SPodName: "web-0"})
		if err != nil {
			t.Fatal(err)
		}
		return k, netip.MustParseAddr(r.IpAllocationMetadata[0].Ipv4Addr)
	}
	running, addr = add("sandbox-1")
	failed, _ = add("sandbox-2")
	return running, failed, addr
}

// sweepPastGrace runs the sweep as the grace period passes, both
// allocations older than it.
func sweepPastGrace(t *testing.T, h *harness) {
	t.Helper()
	t0 := time.Now().Add(2 * time.Minute)
	for _, at := range []time.Duration{0, 30 * time.Second, 61 * time.Second, 200 * time.Second} {
		if err := h.n.orphans.sweep(context.Background(), t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOrphanSweepKeepsTheRoutedSandbox: the host routes the running
// sandbox's address through the pod's unmarked veth, so the veth is that
// sandbox's: the failed newer sandbox's address is released after the
// grace period and the running pod keeps its own. Before, the veth was
// taken to be the sandbox assigned last, and the running pod's address
// was released (and could be handed to another pod).
func TestOrphanSweepKeepsTheRoutedSandbox(t *testing.T) {
	links := newFakeLinks()
	times := fastTimes
	times.OrphanGrace = time.Minute
	h := newHarness(t, harnessOpts{links: links, times: &times})
	running, failed, addr := failedNewerSandbox(t, h)
	veth := vethname.HostVethName("eni", "default", "web-0", 0)
	links.mu.Lock()
	links.set[vethname.Suffix("default", "web-0")] = true
	links.routes = []PodRoute{{Addr: addr, Link: veth}}
	links.mu.Unlock()
	sweepPastGrace(t, h)
	if !h.holds(running) {
		t.Errorf("the running sandbox %s, whose address the host routes through the pod's veth, lost it", running.ContainerID)
	}
	if h.holds(failed) {
		t.Errorf("the failed newer sandbox %s still holds an address after the grace period", failed.ContainerID)
	}
	h.checkConsistent()
}
