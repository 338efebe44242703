package ipamd

import (
	"context"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestOrphanSweepReleasesReplacedSandbox: a pod's sandbox is replaced
// while ipamd restarts (the old sandbox's DEL reaches no ipamd, and the
// plugin reports it done), so ipamd holds an address for the old sandbox
// and one for the new. The host veth's name is the pod's, so it is present
// for both; only the new sandbox owns it. The old sandbox's address is
// released once the grace period has passed; the new one's is kept.
func TestOrphanSweepReleasesReplacedSandbox(t *testing.T) {
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
	old := add("sandbox-1")
	// The new sandbox's ADD replaces the host veth of the same name.
	fresh := add("sandbox-2")
	links.mu.Lock()
	links.set[vethname.Suffix("default", "web-0")] = true
	links.mu.Unlock()

	sw := h.n.orphans
	t0 := time.Now().Add(2 * time.Minute) // both allocations are older than the grace
	for _, at := range []time.Duration{0, 30 * time.Second, 61 * time.Second, 200 * time.Second} {
		if err := sw.sweep(ctx, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	if h.holds(old) {
		t.Errorf("the replaced sandbox %s still holds an address after the grace period", old.ContainerID)
	}
	if !h.holds(fresh) {
		t.Errorf("the live sandbox %s lost its address", fresh.ContainerID)
	}
	h.checkConsistent()
}
