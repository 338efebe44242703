package awsutils

import (
	"errors"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// fakeClock drives the simulator's time so IMDS lag is deterministic.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestMetadata(t *testing.T, env *simtest.Env) *Metadata {
	t.Helper()
	md, err := NewMetadata(Config{IMDSEndpoint: env.IMDSURL(instanceID)})
	if err != nil {
		t.Fatal(err)
	}
	return md
}

func TestIMDSIdentity(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	md := newTestMetadata(t, env)
	id, err := md.Identity(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	sv, _ := env.Sim.Instance(instanceID)
	want := Identity{
		InstanceID:   instanceID,
		InstanceType: "m5.large",
		Region:       "us-west-2",
		AZ:           "us-west-2a",
		AccountID:    "123456789012",
		PrimaryMAC:   sv.MAC,
		LocalIPv4:    sv.PrimaryIP,
	}
	if d := cmp.Diff(want, id, netipOpts); d != "" {
		t.Errorf("Identity (-want +got):\n%s", d)
	}
}

func TestIMDSRegionFeedsEC2(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	md := newTestMetadata(t, env)
	cfg := testConfig(env)
	cfg.Region = ""
	e, err := NewEC2(testCtx(t), cfg, md)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Instance(testCtx(t), instanceID); err != nil {
		t.Fatal(err)
	}
	if _, err := NewEC2(testCtx(t), cfg, nil); err == nil {
		t.Error("NewEC2 without region or metadata: no error")
	}
}

func TestIMDSEndpointFromSDKVariable(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", env.IMDSURL(instanceID))
	md, err := NewMetadata(Config{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := md.Identity(testCtx(t))
	if err != nil || id.InstanceID != instanceID {
		t.Fatalf("Identity via AWS_EC2_METADATA_SERVICE_ENDPOINT = %+v, %v", id, err)
	}
	if _, err := NewMetadata(Config{IMDSEndpoint: "::bad"}); err == nil {
		t.Error("bad IMDSEndpoint accepted")
	}
}

func TestIMDSPerMACMetadata(t *testing.T) {
	env := simtest.Start(t, simtest.Basic())
	md := newTestMetadata(t, env)
	e := newTestEC2(t, env)
	ctx := testCtx(t)
	inst, _ := node(t, e)
	sv, _ := env.Sim.Instance(instanceID)

	eni, err := e.AllocateENI(ctx, AllocateENIRequest{CreateENIRequest: CreateENIRequest{
		InstanceID: instanceID, SubnetID: simtest.CNISubnetID, SecurityGroups: []string{simtest.SecurityGroup2ID}, SecondaryIPv4Count: 3,
	}})
	if err != nil {
		t.Fatal(err)
	}
	prefixes, err := e.AssignIPv4Prefixes(ctx, eni.ID, 1)
	if err != nil {
		t.Fatal(err)
	}

	got, err := md.ENIs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vpc4 := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/16"), netip.MustParsePrefix("100.64.0.0/16")}
	vpc6 := []netip.Prefix{netip.MustParsePrefix("2600:1f14:abc:de00::/56")}
	want := []ENIMetadata{
		{
			MAC: sv.MAC, ENIID: inst.PrimaryENI, Primary: true, DeviceNumber: 0, SubnetID: simtest.NodeSubnetID,
			SubnetIPv4CIDR: netip.MustParsePrefix("10.0.0.0/20"), SubnetIPv6CIDRs: []netip.Prefix{netip.MustParsePrefix("2600:1f14:abc:de00::/64")},
			VPCID: simtest.VPCID, VPCIPv4CIDRs: vpc4, VPCIPv6CIDRs: vpc6,
			SecurityGroups: []string{simtest.SecurityGroupID}, IPv4s: []netip.Addr{sv.PrimaryIP},
		},
		{
			MAC: eni.MAC, ENIID: eni.ID, DeviceNumber: 1, SubnetID: simtest.CNISubnetID,
			SubnetIPv4CIDR: netip.MustParsePrefix("10.0.32.0/20"), SubnetIPv6CIDRs: []netip.Prefix{netip.MustParsePrefix("2600:1f14:abc:de02::/64")},
			VPCID: simtest.VPCID, VPCIPv4CIDRs: vpc4, VPCIPv6CIDRs: vpc6,
			SecurityGroups: []string{simtest.SecurityGroup2ID},
			IPv4s:          append([]netip.Addr{eni.PrivateIPv4}, eni.SecondaryIPv4...),
			IPv4Prefixes:   prefixes,
		},
	}
	if d := cmp.Diff(want, got, netipOpts); d != "" {
		t.Errorf("ENIs (-want +got):\n%s", d)
	}

	cidrs, err := md.VPCIPv4CIDRs(ctx, sv.MAC)
	if err != nil || !slices.Equal(cidrs, vpc4) {
		t.Errorf("VPCIPv4CIDRs = %v, %v", cidrs, err)
	}
	sgs, err := md.SecurityGroups(ctx, eni.MAC)
	if err != nil || !slices.Equal(sgs, []string{simtest.SecurityGroup2ID}) {
		t.Errorf("SecurityGroups = %v, %v", sgs, err)
	}
	one, err := md.ENI(ctx, eni.MAC)
	if err != nil || one.ENIID != eni.ID {
		t.Errorf("ENI(%s) = %+v, %v", eni.MAC, one, err)
	}
	if _, err := md.ENI(ctx, "02:00:00:00:00:99"); !errors.Is(err, ErrNotInMetadata) {
		t.Errorf("ENI(unknown MAC) = %v, want ErrNotInMetadata", err)
	}
}

func TestIMDSLagThenVisible(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)}
	env := simtest.Start(t, simtest.Basic(), vpcsim.WithClock(clock.Now))
	setFaults(t, env.Sim, vpcsim.Faults{IMDSLag: vpcsim.Duration(5 * time.Second)})
	md := newTestMetadata(t, env)
	e := newTestEC2(t, env)
	ctx := testCtx(t)
	inst, _ := node(t, e)
	clock.Advance(10 * time.Second)

	eni, err := e.AllocateENI(ctx, AllocateENIRequest{CreateENIRequest: CreateENIRequest{
		InstanceID: instanceID, SubnetID: inst.SubnetID, SecurityGroups: inst.SecurityGroups, SecondaryIPv4Count: 2,
	}})
	if err != nil {
		t.Fatal(err)
	}
	// EC2 already has the ENI; IMDS does not yet.
	got, err := md.ENIs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ENIID != inst.PrimaryENI {
		t.Fatalf("ENIs during lag = %+v, want only the primary", got)
	}
	if _, err := md.ENI(ctx, eni.MAC); !errors.Is(err, ErrNotInMetadata) {
		t.Errorf("ENI(%s) during lag = %v, want ErrNotInMetadata", eni.MAC, err)
	}

	clock.Advance(5 * time.Second)
	got, err = md.ENIs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].ENIID != eni.ID || len(got[1].IPv4s) != 3 {
		t.Fatalf("ENIs after lag = %+v, want the new ENI with 3 addresses", got)
	}

	// Addresses lag too: a new secondary IP is in EC2 at once, in IMDS later.
	added, err := e.AssignIPv4(ctx, eni.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	one, err := md.ENI(ctx, eni.MAC)
	if err != nil || slices.Contains(one.IPv4s, added[0]) {
		t.Errorf("IMDS shows %v during lag (err %v)", one.IPv4s, err)
	}
	clock.Advance(5 * time.Second)
	one, err = md.ENI(ctx, eni.MAC)
	if err != nil || !slices.Contains(one.IPv4s, added[0]) {
		t.Errorf("IMDS shows %v after lag, want %s (err %v)", one.IPv4s, added[0], err)
	}
}
