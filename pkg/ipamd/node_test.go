package ipamd

import (
	"context"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestRefreshNodeAppliesNewSecurityGroups: when the primary ENI's groups
// change, every managed secondary ENI follows (upstream's 30 s refresh),
// and an unchanged node costs no EC2 call.
func TestRefreshNodeAppliesNewSecurityGroups(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmENITarget = 2 }})
	ctx := context.Background()
	h.n.PoolCycle(ctx)
	before := h.calls()
	if err := h.n.refresh.RefreshNode(ctx); err != nil {
		t.Fatal(err)
	}
	if d := callDelta(before, h.calls()); len(d) != 0 {
		t.Errorf("refresh of an unchanged node made EC2 calls: %v", d)
	}
	if err := h.ec2.ModifySecurityGroups(ctx, h.primaryENI(), []string{simtest.SecurityGroupID, simtest.SecurityGroup2ID}); err != nil {
		t.Fatal(err)
	}
	if err := h.n.refresh.RefreshNode(ctx); err != nil {
		t.Fatal(err)
	}
	for _, e := range h.env.Sim.NetworkInterfaces() {
		if len(e.Groups) != 2 {
			t.Errorf("ENI %s has groups %v after the refresh", e.ID, e.Groups)
		}
	}
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
	if st := h.pool(0).Stats; st.TotalIPs != 3+len(more) {
		t.Errorf("after reconcile: %+v, want %d addresses", st, 3+len(more))
	}
	h.checkConsistent()
}
