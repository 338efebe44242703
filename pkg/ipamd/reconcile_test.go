package ipamd

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestIMDSLagEC2Wins: instance metadata lags EC2 by seconds. A new ENI is
// used with EC2's data once the bounded wait is over, and reconcile never
// drops what EC2 lists (or what a pod holds) because metadata has not
// caught up.
func TestIMDSLagEC2Wins(t *testing.T) {
	times := fastTimes
	times.IMDSWait = 100 * time.Millisecond
	h := newHarness(t, harnessOpts{times: &times, cfg: func(c *config.Config) { c.WarmENITarget = 1; c.IPCooldown = 0 }})
	ctx := context.Background()
	h.n.PoolCycle(ctx)
	if err := h.env.Sim.SetFaults(vpcsim.Faults{IMDSLag: vpcsim.Duration(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	// 9 pods fill the primary: a second ENI comes while IMDS shows nothing new.
	for i := range 9 {
		if _, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "p" + string(rune('a'+i)), IfName: "eth0"}); err != nil {
			t.Fatal(err)
		}
	}
	h.n.PoolCycle(ctx)
	if got := h.simCounts(); got != (simCounts{2, 18, 0}) {
		t.Fatalf("ENI not added while IMDS lags: %+v", got)
	}
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "on-new-eni", IfName: "eth0"})
	if err != nil || r.IpAllocationMetadata[0].DeviceNumber != 1 {
		t.Fatalf("pod on the new ENI: %v %v", r, err)
	}
	before := h.calls()
	if err := h.n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if d := callDelta(before, h.calls()); d["DescribeNetworkInterfaces"] != 1 {
		t.Errorf("reconcile with disagreeing IMDS should ask EC2 once: %v", d)
	}
	h.checkConsistent()
	if st := h.pool(0).Stats; st.AssignedIPs != 10 || st.TotalIPs != 18 {
		t.Errorf("reconcile under IMDS lag changed the pool: %+v", st)
	}
	// Once IMDS agrees, reconcile costs no EC2 call.
	if err := h.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
		t.Fatal(err)
	}
	before = h.calls()
	if err := h.n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if d := callDelta(before, h.calls()); len(d) != 0 {
		t.Errorf("reconcile with agreeing IMDS made EC2 calls: %v", d)
	}
}

// TestReconcileAdoptsAndNeverRobsAPod: addresses and ENIs changed behind
// ipamd's back are picked up from EC2; an address EC2 no longer lists is
// dropped, but the pod holding one keeps it (quarantined until its DEL).
func TestReconcileAdoptsAndNeverRobsAPod(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmIPTarget = 2; c.IPCooldown = 0 }})
	ctx := context.Background()
	h.n.PoolCycle(ctx)
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "held", IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	held := r.IpAllocationMetadata[0].Ipv4Addr
	eni := h.primaryENI()
	// Someone assigns two addresses and removes every secondary address
	// (including the pod's) directly in EC2.
	info, _ := h.eni(0, eni)
	var all []string
	for _, c := range info.CIDRs {
		all = append(all, c.Prefix.Addr().String())
	}
	extra, err := h.ec2.AssignIPv4(ctx, eni, 2)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []netip.Addr
	for _, a := range info.CIDRs {
		addrs = append(addrs, a.Prefix.Addr())
	}
	if err := h.ec2.UnassignIPv4(ctx, eni, addrs); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	got, _ := h.eni(0, eni)
	have := map[string]bool{}
	for _, c := range got.CIDRs {
		have[c.Prefix.Addr().String()] = true
	}
	for _, a := range extra {
		if !have[a.String()] {
			t.Errorf("address %s assigned in EC2 was not adopted", a)
		}
	}
	// The pod keeps its address, quarantined (no CIDR: it is not the
	// node's any more, and no other pod may get it).
	if a, ok := h.n.cards.all()[0].store.Lookup(key("aws-cni", "held", "eth0")); !ok || a.Addr.String() != held || a.ENIID != "" {
		t.Errorf("the pod's address %s: held %+v %v, want it kept for the pod, pending", held, a, ok)
	}
	if have[held] {
		t.Errorf("the pod's address %s, which EC2 no longer lists, is still in a CIDR of the store", held)
	}
	for _, a := range all {
		if a != held && have[a] {
			t.Errorf("free address %s that EC2 no longer lists is still in the store", a)
		}
	}
	t.Logf("before %v, extra %v, after %v", all, extra, have)
}

// TestReconcileTearsDownDetachedENI: an ENI detached behind ipamd's back
// while pods use it is removed from the store, and its host networking
// (rule and route table) and the evicted pods' ip rules go with it, as
// when ipamd frees an ENI itself.
func TestReconcileTearsDownDetachedENI(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	ctx := context.Background()
	pods := map[int]bool{}
	h.setPods(pods, 12) // m5.large: 9 on the primary ENI, 3 on the second
	// The secondary ENI with pods (a warm one may follow it).
	var second datastore.ENIInfo
	var onSecond []netip.Addr
	for _, e := range h.pool(0).ENIs {
		if e.IsPrimary || len(onSecond) > 0 {
			continue
		}
		for _, ci := range e.CIDRs {
			for _, a := range ci.Allocations {
				onSecond = append(onSecond, a.Addr)
			}
		}
		second = e
	}
	wired := h.host.wired()
	if second.ID == "" || len(onSecond) == 0 {
		t.Fatalf("want pods on a secondary ENI: %v pods %v", second.ID, onSecond)
	}
	if err := h.ec2.FreeENI(ctx, second.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.eni(0, second.ID); ok {
		t.Fatal("the detached ENI is still in the store")
	}
	if h.host.wired() != wired-1 {
		t.Errorf("the detached ENI's host networking is still programmed: %v", h.host.enis)
	}
	h.host.mu.Lock()
	deleted := map[netip.Addr]bool{}
	for _, a := range h.host.podRules {
		deleted[a] = true
	}
	h.host.mu.Unlock()
	for _, a := range onSecond {
		if !deleted[a] {
			t.Errorf("the ip rules of evicted pod address %s were not deleted", a)
		}
	}
}

// TestReleaseFailureRestoresOnlyWhatEC2Holds: EC2 refuses a release
// because some addresses are no longer assigned (gone behind ipamd's back,
// or a retried call EC2 had applied). ipamd puts back only the addresses
// EC2 still lists, so it never hands out one EC2 released.
func TestReleaseFailureRestoresOnlyWhatEC2Holds(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmIPTarget = 1; c.IPCooldown = 0 }})
	ctx := context.Background()
	pods := map[int]bool{}
	h.setPods(pods, 8) // m5.large: the primary ENI's 9 secondary addresses, one warm
	if got := h.simCounts(); got != (simCounts{1, 9, 0}) {
		t.Fatalf("before: %+v, want the primary ENI full", got)
	}
	for i := range pods {
		if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: podKey(i).ContainerID, IfName: "eth0"}); err != nil {
			t.Fatal(err)
		}
	}
	// 9 free addresses, the next cycle releases 8: with 2 of them gone
	// from EC2 the release names at least one address EC2 no longer lists
	// and at least six it does.
	eni := h.primaryENI()
	info, _ := h.eni(0, eni)
	if len(info.CIDRs) != 9 {
		t.Fatalf("primary ENI as the daemon shows it: %+v", info.CIDRs)
	}
	gone := []netip.Addr{info.CIDRs[0].Prefix.Addr(), info.CIDRs[4].Prefix.Addr()}
	if err := h.ec2.UnassignIPv4(ctx, eni, gone); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(ctx)
	if n := len(h.env.Sim.Stats().Errors["UnassignPrivateIpAddresses"]); n == 0 {
		t.Fatal("the release did not fail; want EC2 to refuse addresses it no longer lists")
	}
	has := map[netip.Addr]bool{}
	info, _ = h.eni(0, eni)
	for _, ci := range info.CIDRs {
		has[ci.Prefix.Addr()] = true
	}
	for _, a := range gone {
		if has[a] {
			t.Errorf("after the failed release the store holds %s, which EC2 released", a)
		}
	}
	if len(has) != 7 {
		t.Errorf("after the failed release the store holds %d addresses, want the 7 EC2 still lists", len(has))
	}
	h.checkConsistent()
}
