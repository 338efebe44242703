package awsutils

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// netipOpts lets cmp compare net/netip values.
var netipOpts = cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})

// node reads what ipamd reads at start: the instance, its type and the
// primary ENI's security groups.
func node(t *testing.T, e *EC2) (InstanceInfo, InstanceTypeInfo) {
	t.Helper()
	ctx := testCtx(t)
	inst, err := e.Instance(ctx, instanceID)
	if err != nil {
		t.Fatalf("Instance: %v", err)
	}
	it, err := e.InstanceType(ctx, inst.Type)
	if err != nil {
		t.Fatalf("InstanceType: %v", err)
	}
	return inst, it
}

func TestInstanceAndType(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env)
	inst, it := node(t, e)
	sv, err := env.Sim.Instance(instanceID)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Type != "m5.large" || inst.PrimaryENI != sv.PrimaryENI || inst.SubnetID != sv.SubnetID || inst.AZ != sv.AZ || inst.VPCID != sv.VPCID {
		t.Errorf("Instance = %+v, sim has %+v", inst, sv)
	}
	if d := cmp.Diff(slices.Sorted(slices.Values(sv.SecurityGroups)), inst.SecurityGroups); d != "" {
		t.Errorf("security groups (-sim +got):\n%s", d)
	}
	if len(inst.ENIs) != 1 || inst.ENIs[0].ID != sv.PrimaryENI || inst.ENIs[0].DeviceIndex != 0 {
		t.Errorf("attached ENIs = %+v", inst.ENIs)
	}
	// m5.large: 3 ENIs, 10 IPv4 and 10 IPv6 addresses each, Nitro.
	if it.MaxENIs != 3 || it.IPv4PerENI != 10 || it.IPv6PerENI != 10 || it.Hypervisor != HypervisorNitro || !it.PrefixDelegationSupported() {
		t.Errorf("InstanceType = %+v", it)
	}
	if _, err := e.InstanceType(testCtx(t), "m5.nonexistent"); err == nil {
		t.Error("unknown instance type: no error")
	}
	if _, err := e.Instance(testCtx(t), "i-0ffffffffffffffff"); !IsNotFound(err) {
		t.Errorf("unknown instance: err = %v, want a NotFound code", err)
	}
}

func TestENILifecycleSecondaryIPs(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env)
	ctx := testCtx(t)
	inst, it := node(t, e)

	eni, err := e.AllocateENI(ctx, AllocateENIRequest{CreateENIRequest: CreateENIRequest{
		InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups,
		SecondaryIPv4Count: it.IPv4PerENI - 1,
	}})
	if err != nil {
		t.Fatalf("AllocateENI: %v", err)
	}
	sv, ok := simENI(env.Sim, eni.ID)
	if !ok {
		t.Fatalf("ENI %s not in the simulator", eni.ID)
	}
	if sv.Attachment == nil || sv.Attachment.InstanceID != instanceID || sv.Attachment.DeviceIndex != 1 || !sv.Attachment.DeleteOnTermination {
		t.Errorf("sim attachment = %+v, want instance %s device 1 delete-on-termination", sv.Attachment, instanceID)
	}
	if eni.Attachment == nil || eni.Attachment.ID != sv.Attachment.ID || eni.Attachment.DeviceIndex != 1 {
		t.Errorf("returned attachment = %+v, sim %+v", eni.Attachment, sv.Attachment)
	}
	if sv.Description != "aws-K8S-"+instanceID {
		t.Errorf("description = %q", sv.Description)
	}
	if d := cmp.Diff(sv.SecondaryIPs, eni.SecondaryIPv4, cmpopts.SortSlices(netip.Addr.Less), netipOpts); d != "" || len(eni.SecondaryIPv4) != 9 {
		t.Errorf("secondary IPs (-sim +returned), %d returned:\n%s", len(eni.SecondaryIPv4), d)
	}
	if eni.PrivateIPv4 != sv.PrimaryIP || eni.MAC != sv.MAC {
		t.Errorf("primary %s mac %s, sim %s %s", eni.PrivateIPv4, eni.MAC, sv.PrimaryIP, sv.MAC)
	}

	// Full: one more address is over the instance type's limit.
	_, err = e.AssignIPv4(ctx, eni.ID, 1)
	if !IsLimitExceeded(err) {
		t.Fatalf("AssignIPv4 on a full ENI: %v, want PrivateIpAddressLimitExceeded", err)
	}
	release := eni.SecondaryIPv4[:3]
	if err := e.UnassignIPv4(ctx, eni.ID, release); err != nil {
		t.Fatalf("UnassignIPv4: %v", err)
	}
	got, err := e.AssignIPv4(ctx, eni.ID, 2)
	if err != nil || len(got) != 2 {
		t.Fatalf("AssignIPv4(2) = %v, %v", got, err)
	}
	sv, _ = simENI(env.Sim, eni.ID)
	want := append(slices.Clone(eni.SecondaryIPv4[3:]), got...)
	if d := cmp.Diff(want, sv.SecondaryIPs, cmpopts.SortSlices(netip.Addr.Less), netipOpts); d != "" {
		t.Errorf("sim secondary IPs after unassign/assign (-want +sim):\n%s", d)
	}

	// DescribeENIs agrees with the simulator for both ENIs.
	enis, vanished, err := e.DescribeENIs(ctx, []string{inst.PrimaryENI, eni.ID})
	if err != nil || len(vanished) != 0 || len(enis) != 2 {
		t.Fatalf("DescribeENIs = %d ENIs, vanished %v, %v", len(enis), vanished, err)
	}
	for _, d := range enis {
		sv, _ := simENI(env.Sim, d.ID)
		if d.PrivateIPv4 != sv.PrimaryIP || len(d.SecondaryIPv4) != len(sv.SecondaryIPs) || d.Attachment == nil ||
			d.Attachment.DeviceIndex != sv.Attachment.DeviceIndex || d.SubnetID != sv.SubnetID || d.Status != sv.Status {
			t.Errorf("DescribeENIs %s = %+v, sim %+v", d.ID, d, sv)
		}
	}

	if err := e.FreeENI(ctx, eni.ID, ""); err != nil {
		t.Fatalf("FreeENI: %v", err)
	}
	if _, ok := simENI(env.Sim, eni.ID); ok {
		t.Errorf("ENI %s still exists after FreeENI", eni.ID)
	}
	// Freeing again is a no-op.
	if err := e.FreeENI(ctx, eni.ID, ""); err != nil {
		t.Errorf("second FreeENI: %v", err)
	}
}

func TestENILifecyclePrefixes(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env)
	ctx := testCtx(t)
	inst, _ := node(t, e)

	eni, err := e.AllocateENI(ctx, AllocateENIRequest{CreateENIRequest: CreateENIRequest{
		InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups, IPv4PrefixCount: 1,
	}})
	if err != nil {
		t.Fatalf("AllocateENI: %v", err)
	}
	if len(eni.IPv4Prefixes) != 1 || eni.IPv4Prefixes[0].Bits() != 28 {
		t.Fatalf("prefixes of new ENI = %v, want one /28", eni.IPv4Prefixes)
	}
	more, err := e.AssignIPv4Prefixes(ctx, eni.ID, 2)
	if err != nil || len(more) != 2 {
		t.Fatalf("AssignIPv4Prefixes(2) = %v, %v", more, err)
	}
	for _, p := range more {
		if p.Bits() != 28 || p.Masked() != p {
			t.Errorf("prefix %s is not an aligned /28", p)
		}
	}
	if err := e.UnassignIPv4Prefixes(ctx, eni.ID, eni.IPv4Prefixes); err != nil {
		t.Fatalf("UnassignIPv4Prefixes: %v", err)
	}
	sv, _ := simENI(env.Sim, eni.ID)
	if d := cmp.Diff(more, sv.Prefixes, cmpopts.SortSlices(func(a, b netip.Prefix) bool { return a.Addr().Less(b.Addr()) }), netipOpts); d != "" {
		t.Errorf("sim prefixes (-want +sim):\n%s", d)
	}
	got, err := e.DescribeENI(ctx, eni.ID)
	if err != nil || len(got.IPv4Prefixes) != 2 {
		t.Errorf("DescribeENI prefixes = %v, %v", got.IPv4Prefixes, err)
	}
	if err := e.FreeENI(ctx, eni.ID, ""); err != nil {
		t.Fatalf("FreeENI: %v", err)
	}
	if _, ok := simENI(env.Sim, eni.ID); ok {
		t.Errorf("ENI %s still exists after FreeENI", eni.ID)
	}
}

func TestENILifecycleIPv6(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env)
	ctx := testCtx(t)
	inst, _ := node(t, e)
	subnets, err := e.Subnets(ctx, inst.VPCID, inst.AZ)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(subnets, func(s Subnet) bool { return len(s.IPv6CIDRs) > 0 })
	if i < 0 {
		t.Fatalf("simtest.Basic() has no IPv6 subnet in %s: %+v", inst.AZ, subnets)
	}
	sub := subnets[i]

	eni, err := e.AllocateENI(ctx, AllocateENIRequest{CreateENIRequest: CreateENIRequest{
		InstanceID: instanceID, SubnetID: sub.ID, SecurityGroups: inst.SecurityGroups, IPv6PrefixCount: 1,
	}})
	if err != nil {
		t.Fatalf("AllocateENI: %v", err)
	}
	if len(eni.IPv6Prefixes) != 1 || eni.IPv6Prefixes[0].Bits() != 80 || !sub.IPv6CIDRs[0].Contains(eni.IPv6Prefixes[0].Addr()) {
		t.Fatalf("IPv6 prefixes of new ENI = %v, want one /80 in %v", eni.IPv6Prefixes, sub.IPv6CIDRs)
	}
	more, err := e.AssignIPv6Prefixes(ctx, eni.ID, 1)
	if err != nil || len(more) != 1 || more[0].Bits() != 80 {
		t.Fatalf("AssignIPv6Prefixes = %v, %v", more, err)
	}
	sv, _ := simENI(env.Sim, eni.ID)
	if want := append(slices.Clone(eni.IPv6Prefixes), more...); !slices.Equal(sv.IPv6Prefixes, want) {
		t.Errorf("sim IPv6 prefixes = %v, want %v", sv.IPv6Prefixes, want)
	}
	if err := e.FreeENI(ctx, eni.ID, ""); err != nil {
		t.Fatalf("FreeENI: %v", err)
	}
	if _, ok := simENI(env.Sim, eni.ID); ok {
		t.Errorf("ENI %s still exists after FreeENI", eni.ID)
	}
}

func TestAllocateENIRollsBackWhenAttachFails(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env)
	ctx := testCtx(t)
	inst, _ := node(t, e)
	before := simENIIDs(env.Sim)

	setFaults(t, env.Sim, vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "AttachNetworkInterface", Code: "InvalidParameterValue"}}})
	_, err := e.AllocateENI(ctx, AllocateENIRequest{CreateENIRequest: CreateENIRequest{
		InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups, SecondaryIPv4Count: 3,
	}})
	if Code(err) != "InvalidParameterValue" {
		t.Fatalf("AllocateENI with failing attach: %v", err)
	}
	if d := cmp.Diff(before, simENIIDs(env.Sim)); d != "" {
		t.Errorf("ENIs after failed allocation (-before +after):\n%s", d)
	}
	if n := env.Sim.Stats().Calls["DeleteNetworkInterface"]; n != 1 {
		t.Errorf("DeleteNetworkInterface calls = %d, want 1 (the rollback)", n)
	}
}

// TestAllocateENIKeepsENIWhenDeleteOnTerminationFails: the attached ENI is
// returned (not detached and deleted, which costs three more calls that can
// fail too), its attachment without delete-on-termination, and a later
// SetDeleteOnTermination sets it.
func TestAllocateENIKeepsENIWhenDeleteOnTerminationFails(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env)
	ctx := testCtx(t)
	inst, _ := node(t, e)

	setFaults(t, env.Sim, vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: "ModifyNetworkInterfaceAttribute", Code: "IncorrectState"}}})
	eni, err := e.AllocateENI(ctx, AllocateENIRequest{CreateENIRequest: CreateENIRequest{
		InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups,
	}})
	if !errors.Is(err, ErrDeleteOnTerminationUnset) || Code(err) != "IncorrectState" {
		t.Fatalf("AllocateENI with failing ModifyNetworkInterfaceAttribute: %v, want ErrDeleteOnTerminationUnset wrapping IncorrectState", err)
	}
	if eni.ID == "" || eni.Attachment == nil || eni.Attachment.ID == "" || eni.Attachment.DeleteOnTermination {
		t.Fatalf("returned ENI %+v, want it attached without delete-on-termination", eni)
	}
	sv, ok := simENI(env.Sim, eni.ID)
	if !ok || sv.Attachment == nil || sv.Attachment.DeleteOnTermination {
		t.Fatalf("sim ENI %s: %+v, want attached without delete-on-termination", eni.ID, sv)
	}
	st := env.Sim.Stats()
	if st.Calls["DetachNetworkInterface"] != 0 || st.Calls["DeleteNetworkInterface"] != 0 {
		t.Errorf("detach/delete calls = %d/%d, want 0/0: the ENI is kept", st.Calls["DetachNetworkInterface"], st.Calls["DeleteNetworkInterface"])
	}

	setFaults(t, env.Sim, vpcsim.Faults{})
	if err := e.SetDeleteOnTermination(ctx, eni.ID, eni.Attachment.ID); err != nil {
		t.Fatalf("SetDeleteOnTermination retry: %v", err)
	}
	if sv, _ := simENI(env.Sim, eni.ID); sv.Attachment == nil || !sv.Attachment.DeleteOnTermination {
		t.Errorf("sim ENI %s after the retry: %+v, want delete-on-termination", eni.ID, sv.Attachment)
	}
}

func TestAllocateENIAtAttachmentLimit(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env)
	ctx := testCtx(t)
	inst, it := node(t, e)
	req := AllocateENIRequest{CreateENIRequest: CreateENIRequest{
		InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups, SecondaryIPv4Count: 1,
	}}
	for i := 1; i < it.MaxENIs; i++ {
		eni, err := e.AllocateENI(ctx, req)
		if err != nil {
			t.Fatalf("AllocateENI #%d: %v", i, err)
		}
		if eni.Attachment.DeviceIndex != i {
			t.Errorf("ENI #%d at device %d", i, eni.Attachment.DeviceIndex)
		}
	}
	before := simENIIDs(env.Sim)
	_, err := e.AllocateENI(ctx, req)
	if Code(err) != CodeAttachmentLimitExceeded || !IsLimitExceeded(err) {
		t.Fatalf("AllocateENI beyond %d ENIs: %v, want AttachmentLimitExceeded", it.MaxENIs, err)
	}
	if d := cmp.Diff(before, simENIIDs(env.Sim)); d != "" {
		t.Errorf("ENIs after refused allocation (-before +after):\n%s", d)
	}
	if got := len(before); got != it.MaxENIs {
		t.Errorf("%d ENIs exist, want %d", got, it.MaxENIs)
	}
}

func TestDescribeENIsDropsDeletedIDs(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env)
	ctx := testCtx(t)
	inst, _ := node(t, e)

	var ids []string
	for range 2 {
		eni, err := e.CreateENI(ctx, CreateENIRequest{InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, eni.ID)
	}
	for _, id := range ids {
		if err := e.DeleteENI(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	enis, vanished, err := e.DescribeENIs(ctx, []string{ids[0], inst.PrimaryENI, ids[1]})
	if err != nil {
		t.Fatalf("DescribeENIs: %v", err)
	}
	if len(enis) != 1 || enis[0].ID != inst.PrimaryENI {
		t.Errorf("DescribeENIs returned %+v, want only the primary ENI", enis)
	}
	if d := cmp.Diff(ids, vanished, cmpopts.SortSlices(func(a, b string) bool { return a < b })); d != "" {
		t.Errorf("vanished (-want +got):\n%s", d)
	}
	// Only deleted ids: nothing left to describe, no error.
	enis, vanished, err = e.DescribeENIs(ctx, ids[:1])
	if err != nil || len(enis) != 0 || len(vanished) != 1 {
		t.Errorf("DescribeENIs(deleted) = %v, %v, %v", enis, vanished, err)
	}
	// No ids: no call at all (an empty id list would describe the account).
	calls := env.Sim.Stats().Calls["DescribeNetworkInterfaces"]
	if enis, _, err := e.DescribeENIs(ctx, nil); err != nil || enis != nil {
		t.Errorf("DescribeENIs(nil) = %v, %v", enis, err)
	}
	if env.Sim.Stats().Calls["DescribeNetworkInterfaces"] != calls {
		t.Error("DescribeENIs(nil) called EC2")
	}
	// DeleteENI of a deleted ENI is success.
	if err := e.DeleteENI(ctx, ids[0]); err != nil {
		t.Errorf("DeleteENI(deleted) = %v", err)
	}
}

func TestCreateENITags(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env, func(c *Config) {
		c.ClusterName = "prod"
		c.AdditionalTags = map[string]string{"team": "net", "node.k8s.amazonaws.com/no_manage": "true"}
	})
	ctx := testCtx(t)
	inst, _ := node(t, e)
	eni, err := e.CreateENI(ctx, CreateENIRequest{InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups})
	if err != nil {
		t.Fatal(err)
	}
	sv, _ := simENI(env.Sim, eni.ID)
	created, ok := sv.Tags[TagCreatedAt]
	if !ok {
		t.Fatalf("no %s tag: %v", TagCreatedAt, sv.Tags)
	}
	if DecideLeaked(sv.Tags, e.cfg.Now()) != LeakSkip {
		t.Errorf("createdAt %q is not a fresh RFC 3339 time", created)
	}
	want := map[string]string{
		TagInstanceID:  instanceID,
		TagCreatedAt:   created,
		TagClusterName: "prod",
		TagENIOwner:    "amazon-vpc-cni",
		"team":         "net",
	}
	if d := cmp.Diff(want, sv.Tags); d != "" {
		t.Errorf("tags on the created ENI (-want +sim):\n%s", d)
	}
	if d := cmp.Diff(want, eni.Tags); d != "" {
		t.Errorf("tags returned by CreateENI (-want +got):\n%s", d)
	}

	// CreateTags and ModifySecurityGroups act on the ENI.
	if err := e.CreateTags(ctx, eni.ID, map[string]string{TagNoManage: "false"}); err != nil {
		t.Fatal(err)
	}
	if err := e.ModifySecurityGroups(ctx, eni.ID, inst.SecurityGroups); err != nil {
		t.Fatal(err)
	}
	sv, _ = simENI(env.Sim, eni.ID)
	if sv.Tags[TagNoManage] != "false" {
		t.Errorf("CreateTags did not land: %v", sv.Tags)
	}
	if err := e.CreateTags(ctx, "eni-00000000000000bad", map[string]string{"a": "b"}); !IsNotFound(err) {
		t.Errorf("CreateTags on a missing ENI: %v", err)
	}
}

func TestCreateENIRejectsBadRequests(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env)
	ctx := testCtx(t)
	for _, req := range []CreateENIRequest{
		{SubnetID: "subnet-1"},
		{InstanceID: instanceID},
		{InstanceID: instanceID, SubnetID: "subnet-1", SecondaryIPv4Count: 1, IPv4PrefixCount: 1},
		{InstanceID: instanceID, SubnetID: "subnet-1", SecondaryIPv4Count: -1},
	} {
		if _, err := e.CreateENI(ctx, req); err == nil {
			t.Errorf("CreateENI(%+v) accepted", req)
		}
	}
	if n := env.Sim.Stats().Calls["CreateNetworkInterface"]; n != 0 {
		t.Errorf("invalid requests reached EC2 %d times", n)
	}
	_, err := e.CreateENI(ctx, CreateENIRequest{InstanceID: instanceID, SubnetID: "subnet-00000000000000bad"})
	if !IsNotFound(err) {
		t.Errorf("CreateENI in a missing subnet: %v", err)
	}
	if errors.Is(err, ErrIMDSOnly) {
		t.Error("wrong error")
	}
}

func TestInstanceTypeMultiCardAndBareMetal(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env)
	ctx := testCtx(t)
	it, err := e.InstanceType(ctx, "c6in.32xlarge")
	if err != nil {
		t.Fatal(err)
	}
	want := InstanceTypeInfo{Type: "c6in.32xlarge", MaxENIs: 8, MaxENIsInstance: 16, IPv4PerENI: 50, IPv6PerENI: 50,
		NetworkCards: []NetworkCard{{0, 8}, {1, 8}}, Hypervisor: HypervisorNitro, VCPUs: 128, Trunking: true}
	if d := cmp.Diff(want, it); d != "" {
		t.Errorf("c6in.32xlarge (-want +got):\n%s", d)
	}
	metal, err := e.InstanceType(ctx, "c5.metal")
	if err != nil {
		t.Fatal(err)
	}
	if !metal.BareMetal || metal.Hypervisor == HypervisorNitro || !metal.PrefixDelegationSupported() || !metal.Trunking {
		t.Errorf("c5.metal = %+v, want bare metal without a hypervisor, prefix delegation and trunking supported", metal)
	}
	t3, err := e.InstanceType(ctx, "t3.medium")
	if err != nil {
		t.Fatal(err)
	}
	if t3.Trunking {
		t.Errorf("t3.medium = %+v, want no trunking", t3)
	}
}

// TestFreeENICalls pins what freeing an ENI costs: with the attachment id
// known and a detach that ends within DetachWait, a detach and a delete
// and nothing else; without the id one describe more; with a detach slower
// than DetachWait, one InUse delete, one describe re-check and back-off,
// never a describe loop.
func TestFreeENICalls(t *testing.T) {
	for _, tc := range []struct {
		name        string
		knownID     bool
		detachDelay time.Duration
		want        map[string]int64
		inUse       int
	}{
		{"attachment known, quick detach", true, 20 * time.Millisecond,
			map[string]int64{"DetachNetworkInterface": 1, "DeleteNetworkInterface": 1}, 0},
		{"attachment unknown", false, 20 * time.Millisecond,
			map[string]int64{"DescribeNetworkInterfaces": 1, "DetachNetworkInterface": 1, "DeleteNetworkInterface": 1}, 0},
		{"slow detach", true, 400 * time.Millisecond,
			map[string]int64{"DescribeNetworkInterfaces": 1, "DetachNetworkInterface": 1}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := simtest.Start(t, simtest.Basic())
			e := newTestEC2(t, env, func(c *Config) {
				c.DetachWait = 100 * time.Millisecond
				c.DetachPoll = Backoff{Base: 100 * time.Millisecond, Max: 200 * time.Millisecond}
			})
			ctx := testCtx(t)
			inst, _ := node(t, e)
			eni, err := e.AllocateENI(ctx, AllocateENIRequest{CreateENIRequest: CreateENIRequest{
				InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups,
			}})
			if err != nil {
				t.Fatal(err)
			}
			setFaults(t, env.Sim, vpcsim.Faults{DetachDelay: vpcsim.Duration(tc.detachDelay)})
			before := env.Sim.Stats().Calls
			att := ""
			if tc.knownID {
				att = eni.Attachment.ID
			}
			if err := e.FreeENI(ctx, eni.ID, att); err != nil {
				t.Fatalf("FreeENI: %v", err)
			}
			if _, ok := simENI(env.Sim, eni.ID); ok {
				t.Errorf("ENI %s still exists", eni.ID)
			}
			st := env.Sim.Stats()
			got := map[string]int64{}
			for k, v := range st.Calls {
				if d := v - before[k]; d != 0 {
					got[k] = d
				}
			}
			deletes := got["DeleteNetworkInterface"]
			delete(got, "DeleteNetworkInterface")
			want := maps.Clone(tc.want)
			wantDeletes := want["DeleteNetworkInterface"]
			delete(want, "DeleteNetworkInterface")
			if !maps.Equal(got, want) {
				t.Errorf("calls %v, want %v", got, want)
			}
			failed := len(st.Errors["DeleteNetworkInterface"])
			if tc.inUse == 0 && (deletes != wantDeletes || failed != 0) {
				t.Errorf("%d deletes (%d failed), want %d clean", deletes, failed, wantDeletes)
			}
			// A slow detach: the first delete is refused, the back-off
			// (100, then ≤200 ms) bounds the rest to a few.
			if tc.inUse > 0 && (failed < tc.inUse || deletes > 5) {
				t.Errorf("%d deletes, %d refused; want ≥ %d refused and ≤ 5 in all", deletes, failed, tc.inUse)
			}
		})
	}
}

func TestFreeENIWaitIsBoundedByContext(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	e := newTestEC2(t, env)
	inst, _ := node(t, e)
	eni, err := e.AllocateENI(testCtx(t), AllocateENIRequest{CreateENIRequest: CreateENIRequest{
		InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups,
	}})
	if err != nil {
		t.Fatal(err)
	}
	setFaults(t, env.Sim, vpcsim.Faults{DetachDelay: vpcsim.Duration(300 * time.Millisecond)})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err = e.FreeENI(ctx, eni.ID, "")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("FreeENI = %v, want the context's deadline", err)
	}
	if sv, ok := simENI(env.Sim, eni.ID); !ok || sv.Attachment == nil || sv.Attachment.Status != "detaching" {
		t.Errorf("ENI after interrupted free: %+v (exists %v), want it still detaching", sv, ok)
	}
	// A second FreeENI finds it detaching, deletes it without detaching again.
	if err := e.FreeENI(testCtx(t), eni.ID, ""); err != nil {
		t.Fatalf("second FreeENI: %v", err)
	}
	if _, ok := simENI(env.Sim, eni.ID); ok {
		t.Errorf("ENI %s still exists", eni.ID)
	}
	st := env.Sim.Stats()
	if st.Calls["DetachNetworkInterface"] != 1 || len(st.Errors["DetachNetworkInterface"]) != 0 {
		t.Errorf("DetachNetworkInterface calls %d, errors %v; want one clean call", st.Calls["DetachNetworkInterface"], st.Errors["DetachNetworkInterface"])
	}
}

func TestUserAgentCarriesVersion(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	var mu sync.Mutex
	var agents []string
	// A pass-through in front of the simulator that records the header.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		agents = append(agents, r.UserAgent())
		mu.Unlock()
		env.Sim.EC2Handler().ServeHTTP(w, r)
	}))
	defer srv.Close()
	e := newTestEC2(t, env, func(c *Config) { c.EC2Endpoint = srv.URL; c.Version = "v1.23.1" })
	if _, err := e.Instance(testCtx(t), instanceID); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(agents) != 1 || !strings.Contains(agents[0], "amazon-vpc-cni-k8s/v1.23.1") {
		t.Errorf("User-Agent = %q, want amazon-vpc-cni-k8s/v1.23.1 in it", agents)
	}
}
