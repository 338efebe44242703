package ipamd

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestENILifecycleFailuresLeakNothing injects a failure at every step of
// the ENI life cycle (create, attach, host networking) and checks that
// vpcsim is left with only the primary ENI (delete-on-termination: see
// TestDeleteOnTerminationFailureKeepsENI).
func TestENILifecycleFailuresLeakNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		action string // EC2 action failing; "" = host networking fails
	}{
		{"create fails", "CreateNetworkInterface"},
		{"attach fails", "AttachNetworkInterface"},
		{"host networking fails", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmENITarget = 2 }})
			if tc.action != "" {
				if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: tc.action, Code: "UnauthorizedOperation", Count: 1}}}); err != nil {
					t.Fatal(err)
				}
			} else {
				h.host.mu.Lock()
				h.host.setupErr = errors.New("injected: link not found")
				h.host.mu.Unlock()
			}
			ctx := context.Background()
			h.n.PoolCycle(ctx) // fills the primary, then fails to add an ENI
			enis := h.env.Sim.NetworkInterfaces()
			if len(enis) != 1 || enis[0].Attachment == nil {
				t.Fatalf("after a failed ENI allocation vpcsim has %d ENIs (want the primary only): %+v", len(enis), enis)
			}
			_, lastErr := h.n.cards[0].state()
			if lastErr == nil {
				t.Error("the failure was not recorded for AddNetwork's error message")
			} else {
				t.Logf("recorded: %v", lastErr)
			}
			if h.host.wired() != 0 {
				t.Errorf("host networking left for %d ENIs", h.host.wired())
			}
			h.checkConsistent()
			// The fault was one-shot: the next cycle succeeds.
			h.n.PoolCycle(ctx)
			if got := h.simCounts(); got != (simCounts{2, 18, 0}) {
				t.Errorf("after recovery: %+v, want 2 ENIs with 18 addresses", got)
			}
			h.checkConsistent()
		})
	}
}

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
	if st := h.n.cards[0].store.Stats(); st.AssignedIPs != 10 || st.TotalIPs != 18 {
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
// dropped when free but kept while a pod holds it.
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
	info, _ := h.n.cards[0].store.ENI(eni)
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
	got, _ := h.n.cards[0].store.ENI(eni)
	have := map[string]bool{}
	for _, c := range got.CIDRs {
		have[c.Prefix.Addr().String()] = true
	}
	for _, a := range extra {
		if !have[a.String()] {
			t.Errorf("address %s assigned in EC2 was not adopted", a)
		}
	}
	if !have[held] {
		t.Errorf("the pod's address %s was taken from the store", held)
	}
	for _, a := range all {
		if a != held && have[a] {
			t.Errorf("free address %s that EC2 no longer lists is still in the store", a)
		}
	}
	t.Logf("before %v, extra %v, after %v", all, extra, have)
}

// TestLeakedENISweep: unattached ENIs this CNI created are deleted once
// their createdAt tag is old enough; an ENI without the tag is stamped
// first; attached ENIs and foreign ENIs are never touched.
func TestLeakedENISweep(t *testing.T) {
	times := fastTimes
	times.LeakedMinAge = time.Hour
	h := newHarness(t, harnessOpts{times: &times})
	ctx := context.Background()
	mk := func() string {
		e, err := h.ec2.CreateENI(ctx, awsutils.CreateENIRequest{InstanceID: "i-0000000000000099", SubnetID: simtest.NodeSubnetID})
		if err != nil {
			t.Fatal(err)
		}
		return e.ID
	}
	old, fresh, untagged := mk(), mk(), mk()
	oldTime := time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339)
	if err := h.ec2.CreateTags(ctx, old, map[string]string{awsutils.TagCreatedAt: oldTime}); err != nil {
		t.Fatal(err)
	}
	if err := h.ec2.CreateTags(ctx, untagged, map[string]string{awsutils.TagCreatedAt: "yesterday"}); err != nil {
		t.Fatal(err)
	}
	deleted, err := h.n.SweepLeaked(ctx, h.n.times.LeakedMinAge)
	if err != nil || deleted != 1 {
		t.Fatalf("sweep: deleted %d, %v; want 1", deleted, err)
	}
	left := map[string]map[string]string{}
	for _, e := range h.env.Sim.NetworkInterfaces() {
		left[e.ID] = e.Tags
	}
	if _, ok := left[old]; ok {
		t.Error("old leaked ENI not deleted")
	}
	if _, ok := left[fresh]; !ok {
		t.Error("young leaked ENI deleted")
	}
	if tags, ok := left[untagged]; !ok || tags[awsutils.TagCreatedAt] == "yesterday" {
		t.Errorf("ENI with an unreadable createdAt should be kept and stamped: %v", tags)
	}
	if len(left) != 3 {
		t.Errorf("attached ENIs must stay: %d ENIs left", len(left))
	}
}

// TestStartupDeletesOwnUnattachedENIs: an ENI this very node created but
// never attached (a crash between create and attach) is deleted at start.
func TestStartupDeletesOwnUnattachedENIs(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true})
	ctx := context.Background()
	mine, err := h.ec2.CreateENI(ctx, awsutils.CreateENIRequest{InstanceID: simtest.InstanceID, SubnetID: simtest.NodeSubnetID})
	if err != nil {
		t.Fatal(err)
	}
	other, err := h.ec2.CreateENI(ctx, awsutils.CreateENIRequest{InstanceID: "i-0000000000000099", SubnetID: simtest.NodeSubnetID})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, e := range h.env.Sim.NetworkInterfaces() {
		ids[e.ID] = true
	}
	if ids[mine.ID] || !ids[other.ID] {
		t.Errorf("after start: own leftover present=%v, other node's ENI present=%v", ids[mine.ID], ids[other.ID])
	}
}

// TestSubnetDiscoveryMovesOnWhenSubnetFull: with ENABLE_SUBNET_DISCOVERY a
// new ENI goes to the eligible subnet with the most free addresses, and to
// the next one when that is full.
func TestSubnetDiscoveryMovesOnWhenSubnetFull(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmENITarget = 2 }})
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "CreateNetworkInterface", Code: awsutils.CodeInsufficientFreeAddresses, Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(context.Background())
	var subnets []string
	for _, e := range h.env.Sim.NetworkInterfaces() {
		subnets = append(subnets, e.SubnetID)
	}
	if len(subnets) != 2 {
		t.Fatalf("ENIs: %v", subnets)
	}
	// Eligible: the node's subnet and the CNI-tagged one (most free
	// addresses, tried first and "full" here); untagged others never.
	if subnets[1] != simtest.NodeSubnetID {
		t.Errorf("second ENI in %s, want the node subnet after the CNI subnet was full", subnets[1])
	}
	if d := h.env.Sim.Stats().Errors["CreateNetworkInterface"][awsutils.CodeInsufficientFreeAddresses]; d != 1 {
		t.Errorf("the CNI subnet was not tried first (%d insufficient-address errors)", d)
	}
	h.checkConsistent()
}

// TestPrefixFallbackOnInsufficientCidrBlocks: when EC2 has no free /28 in
// the subnet, the card serves pods from /32 secondary addresses.
func TestPrefixFallbackOnInsufficientCidrBlocks(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) {
		c.EnablePrefixDelegation, c.WarmPrefixTarget, c.WarmIPTarget = true, 1, 3
	}})
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "AssignPrivateIpAddresses", Code: awsutils.CodeInsufficientCidrBlocks, Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(context.Background())
	if got := h.simCounts(); got.Prefixes != 0 || got.IPs != 3 {
		t.Errorf("after InsufficientCidrBlocks: %+v, want 3 secondary addresses", got)
	}
	r, err := h.srv.AddNetwork(context.Background(), &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "x", IfName: "eth0"})
	if err != nil || !strings.HasPrefix(r.IpAllocationMetadata[0].Ipv4Addr, "10.0.") {
		t.Errorf("pod after fallback: %v %v", r, err)
	}
	h.checkConsistent()
}

// TestTerminateStopsAttachAndFree: after SIGTERM (Terminate) the pool
// manager neither attaches nor frees; AddNetwork still serves what the
// pool holds and otherwise says why it cannot grow.
func TestTerminateStopsAttachAndFree(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	ctx := context.Background()
	h.n.PoolCycle(ctx)
	h.n.Terminate()
	before := h.calls()
	pods := map[int]bool{}
	for i := range 9 {
		k := podKey(i)
		if _, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: k.NetworkName, ContainerId: k.ContainerID, IfName: k.IfName}); err != nil {
			t.Fatal(err)
		}
		pods[i] = true
	}
	h.n.PoolCycle(ctx)
	if d := callDelta(before, h.calls()); len(d) != 0 {
		t.Errorf("EC2 calls after Terminate: %v", d)
	}
	starved, _ := h.n.cards[0].state()
	if !strings.Contains(starved, "shutting down") {
		t.Errorf("starvation reason after Terminate: %q", starved)
	}
}

// TestRefreshNodeAppliesNewSecurityGroups: when the primary ENI's groups
// change, every managed secondary ENI follows (upstream's 30 s refresh),
// and an unchanged node costs no EC2 call.
func TestRefreshNodeAppliesNewSecurityGroups(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmENITarget = 2 }})
	ctx := context.Background()
	h.n.PoolCycle(ctx)
	before := h.calls()
	if err := h.n.RefreshNode(ctx); err != nil {
		t.Fatal(err)
	}
	if d := callDelta(before, h.calls()); len(d) != 0 {
		t.Errorf("refresh of an unchanged node made EC2 calls: %v", d)
	}
	if err := h.ec2.ModifySecurityGroups(ctx, h.primaryENI(), []string{simtest.SecurityGroupID, simtest.SecurityGroup2ID}); err != nil {
		t.Fatal(err)
	}
	if err := h.n.RefreshNode(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range h.env.Sim.NetworkInterfaces() {
		if len(e.Groups) != 2 {
			t.Errorf("ENI %s has groups %v after the refresh", e.ID, e.Groups)
		}
	}
}

// TestExcludedNodeSubnet: the node's subnet is tagged
// kubernetes.io/role/cni=0, so the primary ENI serves no pod: its unused
// addresses are released and pods get addresses from an ENI in the
// CNI-tagged subnet.
func TestExcludedNodeSubnet(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true, scenario: func(sc *vpcsim.Scenario) {
		sc.VPCs[0].Subnets[0].Tags["kubernetes.io/role/cni"] = "0"
	}, cfg: func(c *config.Config) { c.WarmIPTarget = 3 }})
	ctx := context.Background()
	if _, err := h.ec2.AssignIPv4(ctx, h.primaryENI(), 2); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	h.settle()
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if len(inst.ENIs) != 2 || len(inst.ENIs[0].SecondaryIPs) != 0 || inst.ENIs[1].SubnetID != simtest.CNISubnetID || len(inst.ENIs[1].SecondaryIPs) != 3 {
		t.Errorf("ENIs: %+v", inst.ENIs)
	}
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "x", IfName: "eth0"})
	if err != nil || r.IpAllocationMetadata[0].DeviceNumber != 1 {
		t.Errorf("pod: %v %v", r, err)
	}
	h.checkConsistent()
}

// TestIMDSOnlyMode: ENABLE_IMDS_ONLY_MODE learns ENIs and addresses from
// instance metadata alone, never calls EC2, and follows metadata on
// reconcile (an operator or another agent manages the addresses).
func TestIMDSOnlyMode(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true, cfg: func(c *config.Config) {
		c.IMDSOnlyMode, c.DisableProvisioning, c.DisableLeakedENICleanup = true, true, true
	}})
	ctx := context.Background()
	addrs, err := h.ec2.AssignIPv4(ctx, h.primaryENI(), 3)
	if err != nil {
		t.Fatal(err)
	}
	before := h.calls()
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(ctx)
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "a", IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.IpAllocationMetadata[0].Ipv4Addr; got != addrs[0].String() {
		t.Errorf("pod got %s, want the lowest metadata address %s", got, addrs[0])
	}
	more, err := h.ec2.AssignIPv4(ctx, h.primaryENI(), 2) // behind ipamd's back
	if err != nil {
		t.Fatal(err)
	}
	mid := h.calls()
	if err := h.n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if d := callDelta(before, mid); d["AssignPrivateIpAddresses"] != 1 || len(d) != 1 {
		t.Errorf("ipamd called EC2 in IMDS-only mode: %v", d)
	}
	if d := callDelta(mid, h.calls()); len(d) != 0 {
		t.Errorf("reconcile called EC2 in IMDS-only mode: %v", d)
	}
	if st := h.n.cards[0].store.Stats(); st.TotalIPs != 3+len(more) {
		t.Errorf("after reconcile: %+v, want %d addresses", st, 3+len(more))
	}
	h.checkConsistent()
}

// TestDeviceIndexTakenBehindIpamdsBack: ipamd picks device indexes from its
// own view (saving a DescribeInstances per ENI); when another agent took
// that index, the attach fails, nothing leaks, and the next attempt asks
// EC2 for a free index.
func TestDeviceIndexTakenBehindIpamdsBack(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "m5.4xlarge", cfg: func(c *config.Config) { c.WarmENITarget = 2 }})
	ctx := context.Background()
	foreign, err := h.ec2.AllocateENI(ctx, awsutils.AllocateENIRequest{
		CreateENIRequest: awsutils.CreateENIRequest{InstanceID: simtest.InstanceID, SubnetID: simtest.NodeSubnetID},
		DeviceIndex:      1,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(ctx) // device 1 is taken: the attach fails and is undone
	if n := len(h.unattachedENIs()); n != 0 {
		t.Errorf("%d unattached ENIs after the failed attach", n)
	}
	h.n.PoolCycle(ctx)
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	devices := map[int]string{}
	for _, e := range inst.ENIs {
		if other, dup := devices[e.Attachment.DeviceIndex]; dup {
			t.Errorf("device %d used by %s and %s", e.Attachment.DeviceIndex, other, e.ID)
		}
		devices[e.Attachment.DeviceIndex] = e.ID
	}
	if len(inst.ENIs) != 3 || devices[1] != foreign.ID {
		t.Errorf("ENIs after retry: %v", devices)
	}
}

// TestFailedActionsBackOff: a persistent EC2 failure (here a missing IAM
// permission) costs one call, not one per pool cycle.
func TestFailedActionsBackOff(t *testing.T) {
	times := fastTimes
	times.FailureBackoff = time.Hour
	h := newHarness(t, harnessOpts{times: &times, cfg: func(c *config.Config) { c.WarmENITarget = 2 }})
	if err := h.env.Sim.SetFaults(vpcsimFaults("CreateNetworkInterface", "UnauthorizedOperation")); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		h.n.PoolCycle(context.Background())
	}
	if got := h.env.Sim.Stats().Calls["CreateNetworkInterface"]; got != 1 {
		t.Errorf("%d CreateNetworkInterface calls in 5 cycles, want 1", got)
	}
	starved, _ := h.n.cards[0].state()
	if !strings.Contains(starved, "UnauthorizedOperation") || !strings.Contains(starved, "retrying after") {
		t.Errorf("reason %q", starved)
	}
}

// TestPrefixFallbackWhenCreatingENI: a prefix-delegation node whose ENIs
// are full gets InsufficientCidrBlocks from CreateNetworkInterface; it
// creates the next ENI with /32 secondary addresses instead of cooling
// down for 120 s and retrying prefixes, and the pods get addresses.
func TestPrefixFallbackWhenCreatingENI(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "t3.small", cfg: func(c *config.Config) {
		c.EnablePrefixDelegation, c.WarmIPTarget, c.MaxPodsOverride, c.IPCooldown = true, 1, 110, 0
		c.EnableSubnetDiscovery = false // one subnet, so its InsufficientCidrBlocks is final
	}})
	pods := map[int]bool{}
	h.setPods(pods, 47) // the primary ENI holds 3 /28s (48 addresses): one warm
	if got := h.simCounts(); got.ENIs != 1 || got.Prefixes != 3 {
		t.Fatalf("before: %+v, want the primary ENI full of prefixes", got)
	}
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "CreateNetworkInterface", Code: awsutils.CodeInsufficientCidrBlocks, Count: 1}}}); err != nil {
		t.Fatal(err)
	}
	h.setPods(pods, 50)
	if n := h.env.Sim.Stats().Errors["CreateNetworkInterface"][awsutils.CodeInsufficientCidrBlocks]; n != 1 {
		t.Fatalf("InsufficientCidrBlocks answered %d times, want 1", n)
	}
	if got := h.simCounts(); got.ENIs != 2 || got.IPs < 2 || got.Prefixes != 3 {
		t.Errorf("after the fallback: %+v, want a second ENI with secondary IPs next to the 3 prefixes", got)
	}
	h.checkConsistent()
}

// TestReleaseFailureRestoresOnlyWhatEC2Holds: EC2 refuses a release
// because one address is no longer assigned (gone behind ipamd's back, or
// a retried call EC2 had applied). ipamd puts back only the address EC2
// still lists, so it never hands out one EC2 released.
func TestReleaseFailureRestoresOnlyWhatEC2Holds(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	h.settle()
	ctx := context.Background()
	c := h.n.cards[0]
	var eniID string
	var free []netip.Prefix
	for _, e := range c.store.Snapshot() {
		for _, ci := range e.CIDRs {
			if len(ci.Allocations) == 0 && ci.Prefix.Bits() == 32 && (eniID == "" || eniID == e.ID) {
				eniID = e.ID
				free = append(free, ci.Prefix)
			}
		}
	}
	if len(free) < 2 {
		t.Fatalf("need two free addresses on one ENI, have %v", free)
	}
	gone, kept := free[0], free[1]
	if err := h.ec2.UnassignIPv4(ctx, eniID, []netip.Addr{gone.Addr()}); err != nil {
		t.Fatal(err)
	}
	h.n.changes.Lock()
	err := h.n.releaseCIDRs(ctx, c, eniID, []netip.Prefix{gone, kept})
	h.n.changes.Unlock()
	if err == nil {
		t.Fatal("releasing an address EC2 no longer lists succeeded; want EC2's error")
	}
	has := map[netip.Prefix]bool{}
	if info, ok := c.store.ENI(eniID); ok {
		for _, ci := range info.CIDRs {
			has[ci.Prefix] = true
		}
	}
	if has[gone] || !has[kept] {
		t.Errorf("after the failed release the store has %s: %v, %s: %v; want only the one EC2 still lists (%s)",
			gone, has[gone], kept, has[kept], kept)
	}
	h.checkConsistent()
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
	c := h.n.cards[0]
	// The secondary ENI with pods (a warm one may follow it).
	var second datastore.ENIInfo
	var onSecond []netip.Addr
	for _, e := range c.store.Snapshot() {
		if e.IsPrimary || len(onSecond) > 0 {
			continue
		}
		for _, ci := range e.CIDRs {
			for _, a := range ci.Allocations {
				onSecond = append(onSecond, a.Addr)
			}
		}
		second, _ = c.store.ENI(e.ID)
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
	if _, ok := c.store.ENI(second.ID); ok {
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

// TestPrefixFallbackReleasesEmptyPrefixes: a card falls back to /32s
// (InsufficientCidrBlocks) while its primary ENI is full of empty
// prefixes; once every ENI slot is taken and pods wait, the empty prefixes
// are released so /32s take their slots and serve the pods.
func TestPrefixFallbackReleasesEmptyPrefixes(t *testing.T) {
	h := newHarness(t, harnessOpts{instanceType: "t3.small", cfg: func(c *config.Config) {
		c.EnablePrefixDelegation, c.WarmPrefixTarget, c.MaxPodsOverride, c.IPCooldown = true, 3, 110, 0
	}})
	h.settle()
	if got := h.simCounts(); got.ENIs != 1 || got.Prefixes != 3 {
		t.Fatalf("before: %+v, want the primary ENI full of prefixes", got)
	}
	h.n.changes.Lock()
	err := h.n.fallbackToSecondary(h.n.cards[0], "test")
	h.n.changes.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	pods := map[int]bool{}
	h.setPods(pods, 9) // t3.small on /32s: 3 ENIs of 3 secondary addresses
	if got := h.simCounts(); got.ENIs != 3 || got.Prefixes != 0 || got.IPs != 9 {
		t.Errorf("after the fallback: %+v, want 3 ENIs of /32s and no prefix left", got)
	}
	h.checkConsistent()
}
