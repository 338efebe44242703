package ipamd

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// Tests of aws-node environment variables whose behaviour lives in
// pkg/ipamd outside pkg/ipamd/config (docs/compatibility.md,
// "Environment variables").

// ENABLE_IMDS_ONLY_MODE with ENABLE_PREFIX_DELEGATION: the prefixes an
// operator assigned (seen in instance metadata only) serve pods, as
// upstream's do on a Nitro instance. ipamd asks EC2 nothing in this mode,
// so it cannot learn the hypervisor; the prefixes in metadata are the
// proof that the instance has them.
func TestEnvIMDSOnlyPrefixDelegation(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true, cfg: func(c *config.Config) {
		c.IMDSOnlyMode, c.DisableProvisioning, c.DisableLeakedENICleanup = true, true, true
		c.EnablePrefixDelegation, c.WarmPrefixTarget = true, 1
	}})
	ctx := context.Background()
	pfx, err := h.ec2.AssignIPv4Prefixes(ctx, h.primaryENI(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(ctx)
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "a", IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Success || len(r.IpAllocationMetadata) != 1 {
		t.Fatalf("ADD: %+v", r)
	}
	got, err := netip.ParseAddr(r.IpAllocationMetadata[0].Ipv4Addr)
	if err != nil || !pfx[0].Contains(got) {
		t.Errorf("pod got %q, want an address of the metadata prefix %s", r.IpAllocationMetadata[0].Ipv4Addr, pfx[0])
	}
	if mode := h.n.Introspection().Pool().Mode; mode != "prefix" {
		t.Errorf("pool mode %q, want prefix", mode)
	}
}

// DISABLE_NETWORK_RESOURCE_PROVISIONING: ipamd learns the node's ENIs and
// changes nothing in EC2, tags included, as upstream (whose IAM policy for
// this mode may lack ec2:CreateTags).
func TestEnvNoProvisioningTagsNothing(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true, cfg: func(c *config.Config) {
		c.DisableProvisioning = true
		c.ClusterName = "envcompat"
	}})
	ctx := context.Background()
	if _, err := h.ec2.AssignIPv4(ctx, h.primaryENI(), 2); err != nil {
		t.Fatal(err)
	}
	before := h.calls()
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	h.n.PoolCycle(ctx)
	if err := h.n.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	for action, n := range callDelta(before, h.calls()) {
		if !strings.HasPrefix(action, "Describe") {
			t.Errorf("ipamd called %s %d times with DISABLE_NETWORK_RESOURCE_PROVISIONING=true", action, n)
		}
	}
	if st := h.pool(0).Stats; st.TotalIPs != 2 {
		t.Errorf("pool %+v, want the 2 addresses EC2 lists", st)
	}
}

// ANNOTATE_POD_IP with ENABLE_POD_ENI: a pod with a branch ENI gets its
// address in vpc.amazonaws.com/pod-ips on ADD, as every other pod, as
// upstream annotates whatever address the ADD hands out.
func TestEnvAnnotatePodIPBranchPod(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 29, pods: map[string]PodInfo{
		"default/sg": {Found: true, UID: "u1", WantsBranchENI: true, BranchAnnotation: branchAnnotation},
	}}
	h := newHarness(t, harnessOpts{scenario: withTrunk, kube: k, cfg: func(c *config.Config) {
		c.EnablePodENI, c.AnnotatePodIP = true, true
	}})
	h.settle()
	r, err := h.srv.AddNetwork(context.Background(), &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "c-sg",
		IfName: "eth0", K8SPodNamespace: "default", K8SPodName: "sg"})
	if err != nil || r.GetPodVlanId() != 3 {
		t.Fatalf("branch ADD: %v %v", r, err)
	}
	if got := k.podIP("default", "sg"); got != "10.0.0.77" {
		t.Errorf("pod-ips after the branch ADD %q, want the branch address 10.0.0.77", got)
	}
	// Its DEL leaves the annotation, as upstream's returns before clearing.
	d, err := h.srv.DelNetwork(context.Background(), &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "c-sg",
		IfName: "eth0", K8SPodNamespace: "default", K8SPodName: "sg"})
	if err != nil || d.GetPodVlanId() != 3 {
		t.Fatalf("branch DEL: %v %v", d, err)
	}
	if got := k.podIP("default", "sg"); got != "10.0.0.77" {
		t.Errorf("pod-ips after the branch DEL %q, want it kept", got)
	}
}
