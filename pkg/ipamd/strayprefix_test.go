package ipamd

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/poll"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// primaryPrefixes lists the /28s vpcsim has on the primary ENI.
func (h *harness) primaryPrefixes() []netip.Prefix {
	h.t.Helper()
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, e := range inst.ENIs {
		if e.ID == inst.PrimaryENI {
			return slices.Clone(e.Prefixes)
		}
	}
	return nil
}

// TestCustomNetworkingReleasesPrimaryPrefixOnceUnused: a node upgraded
// from a build that handed out the primary ENI's /28 under custom
// networking: EC2 holds the /28 on the primary ENI and the checkpoint a
// running pod in it. ipamd leaves the /28 out of its pool; it keeps it in
// EC2 while the pod holds its entry or the host routes to it, and releases
// it (UnassignPrivateIpAddresses with the prefix) once the pod is gone
// and its address has cooled (a dropped pending entry cools as a DEL's
// address does). Before, the /28 stayed assigned to the primary ENI
// forever.
func TestCustomNetworkingReleasesPrimaryPrefixOnceUnused(t *testing.T) {
	links := newFakeLinks()
	k := &fakeKube{schedulable: true, maxPods: 110, eniConfig: ENIConfig{Name: "pods-a", Subnet: simtest.CustomSubnetAID}}
	times := fastTimes
	times.OrphanGrace = time.Hour // the sweep here only looks at the prefix
	const cooldown = time.Second
	h := newHarness(t, harnessOpts{noInit: true, links: links, kube: k, times: &times, cfg: func(c *config.Config) {
		c.CustomNetworking, c.EnablePrefixDelegation, c.WarmPrefixTarget = true, true, 1
		c.IPCooldown = cooldown
	}})
	ctx := context.Background()
	out, err := h.otherEC2().AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(h.primaryENI()), Ipv4PrefixCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	prefix := netip.MustParsePrefix(aws.ToString(out.AssignedIpv4Prefixes[0].Ipv4Prefix))
	pod := datastore.Allocation{Key: datastore.Key{NetworkName: "aws-cni", ContainerID: "web", IfName: "eth0"},
		Addr: prefix.Addr().Next(), AssignedAt: time.Now().Add(-time.Hour), Meta: datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "web-0"}}
	cp := datastore.NewFileCheckpointer(datastore.CheckpointPath(h.cfg.BackingStore, 0))
	if err := cp.Write(datastore.File{Version: datastore.CheckpointVersion, Allocations: []datastore.Allocation{pod}}); err != nil {
		t.Fatal(err)
	}
	links.mu.Lock()
	links.set[vethname.Suffix("default", "web-0")] = true
	links.routes = []PodRoute{{Addr: pod.Addr, Link: vethname.HostVethName("eni", "default", "web-0", 0)}}
	links.mu.Unlock()
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	sweep := func() {
		t.Helper()
		if err := h.n.orphans.sweep(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	sweep()
	if got := h.primaryPrefixes(); !slices.Contains(got, prefix) {
		t.Fatalf("the primary ENI's prefixes %v lost %s while a pod runs on it", got, prefix)
	}
	// The pending wait ends while the pod still runs: its entry stays.
	h.n.restore.dropPending(ctx)
	sweep()
	if got := h.primaryPrefixes(); !slices.Contains(got, prefix) {
		t.Fatalf("the primary ENI's prefixes %v lost %s while a pod still runs on it", got, prefix)
	}
	// The pod is deleted: the plugin removes its veth and route (its DEL
	// finds no entry any more, which the plugin takes as done); a drop
	// of the pending entries forgets it once its veth is gone.
	links.mu.Lock()
	links.set = map[string]bool{}
	links.routes = nil
	links.mu.Unlock()
	h.n.restore.dropPending(ctx)
	// Sweeps release the prefix once the dropped pod's address has cooled;
	// nothing signals the cooldown's end, so the sweep is polled.
	err = poll.Until(ctx, 30*time.Second, func() error {
		sweep()
		if got := h.primaryPrefixes(); slices.Contains(got, prefix) {
			return fmt.Errorf("the primary ENI still holds %s (%v) with no pod on it and its cooldown over", prefix, got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range h.pool(0).ENIs {
		for _, ci := range e.CIDRs {
			if ci.Prefix == prefix {
				t.Errorf("the pool holds the primary ENI's %s under custom networking", prefix)
			}
		}
	}
}

// TestCustomNetworkingReleasesPrimaryPrefixWhosePodsAreGone: as above, but
// every entry the checkpoint has in the primary ENI's /28 is of a pod gone
// while ipamd was down (no veth: stale) or an address still in its
// cooldown. The /28 is ipamd's all the same: it stays while the address
// cools and is released at the first sweep after. Before, only a /28
// holding a live pod's entry was remembered, so this one (16 addresses of
// the node's subnet) stayed on the primary ENI forever.
func TestCustomNetworkingReleasesPrimaryPrefixWhosePodsAreGone(t *testing.T) {
	links := newFakeLinks()
	k := &fakeKube{schedulable: true, maxPods: 110, eniConfig: ENIConfig{Name: "pods-a", Subnet: simtest.CustomSubnetAID}}
	times := fastTimes
	times.OrphanGrace = time.Hour // the sweep here only looks at the prefix
	// Long enough that Init and the first sweep end inside it on a loaded
	// machine, so the check that the /28 stays while the address cools runs.
	const cooldown = 5 * time.Second
	h := newHarness(t, harnessOpts{noInit: true, links: links, kube: k, times: &times, cfg: func(c *config.Config) {
		c.CustomNetworking, c.EnablePrefixDelegation, c.WarmPrefixTarget = true, true, 1
		c.IPCooldown = cooldown
	}})
	ctx := context.Background()
	out, err := h.otherEC2().AssignPrivateIpAddresses(ctx, &ec2.AssignPrivateIpAddressesInput{
		NetworkInterfaceId: aws.String(h.primaryENI()), Ipv4PrefixCount: aws.Int32(1)})
	if err != nil {
		t.Fatal(err)
	}
	prefix := netip.MustParsePrefix(aws.ToString(out.AssignedIpv4Prefixes[0].Ipv4Prefix))
	gone := datastore.Allocation{Key: datastore.Key{NetworkName: "aws-cni", ContainerID: "web", IfName: "eth0"},
		Addr: prefix.Addr().Next(), AssignedAt: time.Now().Add(-time.Hour), Meta: datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "web-0"}}
	cooling := datastore.Cooling{Addr: gone.Addr.Next(), UnassignedAt: time.Now()}
	cp := datastore.NewFileCheckpointer(datastore.CheckpointPath(h.cfg.BackingStore, 0))
	if err := cp.Write(datastore.File{Version: datastore.CheckpointVersion, Allocations: []datastore.Allocation{gone},
		Cooling: []datastore.Cooling{cooling}}); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	sweep := func() {
		t.Helper()
		if err := h.n.orphans.sweep(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	sweep()
	if time.Since(cooling.UnassignedAt) >= cooldown {
		t.Fatalf("Init and one sweep took over %s: cannot check the /28 is kept while its address cools", cooldown)
	}
	if got := h.primaryPrefixes(); !slices.Contains(got, prefix) {
		t.Fatalf("the primary ENI's prefixes %v lost %s while %s still cools", got, prefix, cooling.Addr)
	}
	// Sweeps until the cooldown is well over release it.
	deadline := cooling.UnassignedAt.Add(cooldown + 2*time.Second)
	for slices.Contains(h.primaryPrefixes(), prefix) {
		if time.Now().After(deadline) {
			t.Fatalf("the primary ENI still holds %s (%v): its pods were gone at start and its cooldown is over", prefix, h.primaryPrefixes())
		}
		time.Sleep(20 * time.Millisecond) // a poll: the sweep is what releases, and nothing signals the cooldown's end
		sweep()
	}
}
