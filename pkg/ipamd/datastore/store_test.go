package datastore

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestNewRejectsBadOptions(t *testing.T) {
	for _, o := range []Options{{Mode: 9}, {CooldownPeriod: -time.Second}} {
		if _, err := New(o); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("New(%+v): %v, want ErrInvalidArgument", o, err)
		}
	}
}

func TestAddENIAndCIDRErrors(t *testing.T) {
	f := newFixture(t, ModePrefixIPv4, 0)
	f.eni("eni-a", 0, "10.0.0.0/28", "10.0.0.40/32", "2001:db8::/80")
	tests := []struct {
		name string
		err  error
		run  func() error
		text string
	}{
		{"duplicate ENI", ErrDuplicateENI, func() error { return f.s.AddENI(ENI{ID: "eni-a"}) }, "eni-a"},
		{"ENI without ID", ErrInvalidArgument, func() error { return f.s.AddENI(ENI{}) }, "without ID"},
		{"CIDR on unknown ENI", ErrUnknownENI, func() error { return f.s.AddCIDR("eni-x", pfx("10.0.9.0/28")) }, "eni-x"},
		{"same CIDR again", ErrDuplicateCIDR, func() error { return f.s.AddCIDR("eni-a", pfx("10.0.0.0/28")) }, "already in data store"},
		{"same CIDR on another ENI", ErrDuplicateCIDR, func() error {
			if err := f.s.AddENI(ENI{ID: "eni-b", DeviceNumber: 1}); err != nil && !errors.Is(err, ErrDuplicateENI) {
				return err
			}
			return f.s.AddCIDR("eni-b", pfx("10.0.0.0/28"))
		}, "10.0.0.0/28 on eni-a"},
		{"/32 inside a known /28", ErrDuplicateCIDR, func() error { return f.s.AddCIDR("eni-a", pfx("10.0.0.5/32")) }, "10.0.0.0/28"},
		{"/28 around a known /32", ErrDuplicateCIDR, func() error { return f.s.AddCIDR("eni-a", pfx("10.0.0.32/28")) }, "10.0.0.40/32"},
		{"/128 inside a known /80", ErrDuplicateCIDR, func() error { return f.s.AddCIDR("eni-a", pfx("2001:db8::7/128")) }, "2001:db8::/80"},
		{"host bits set", ErrInvalidCIDR, func() error { return f.s.AddCIDR("eni-a", pfx("10.0.1.5/28")) }, "10.0.1.0/28"},
		{"too short IPv4", ErrInvalidCIDR, func() error { return f.s.AddCIDR("eni-a", pfx("10.1.0.0/16")) }, "/24 or longer"},
		{"too short IPv6", ErrInvalidCIDR, func() error { return f.s.AddCIDR("eni-a", pfx("2001:db9::/64")) }, "/80 or longer"},
		{"zero prefix", ErrInvalidCIDR, func() error { return f.s.AddCIDR("eni-a", netip.Prefix{}) }, "invalid CIDR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v mentioning %q", err, tc.err, tc.text)
			}
			checkInvariants(t, f.s)
		})
	}
}

func TestRemoveENIAccounting(t *testing.T) {
	f := newFixture(t, ModePrefixIPv4, 30*time.Second)
	f.eni("eni-a", 0, "10.0.0.0/28")
	f.eni("eni-b", 1, "10.0.1.0/28", "10.0.1.16/28")
	if err := f.s.SetExcluded("eni-a", true); err != nil {
		t.Fatal(err)
	}
	f.assign(1) // 10.0.1.0
	f.assign(2) // 10.0.1.1
	f.assign(3) // 10.0.1.2
	f.unassign(3)
	if err := f.s.SetExcluded("eni-a", false); err != nil {
		t.Fatal(err)
	}

	_, err := f.s.RemoveENI("eni-b", false)
	if !errors.Is(err, ErrENIInUse) || !strings.Contains(err.Error(), "eni-b") || !strings.Contains(err.Error(), "2 assigned") {
		t.Fatalf("non-forced removal of an ENI with pods: %v", err)
	}
	if _, err := f.s.RemoveCIDR("eni-b", pfx("10.0.1.0/28"), false); !errors.Is(err, ErrCIDRInUse) || !strings.Contains(err.Error(), "10.0.1.0/28") {
		t.Fatalf("non-forced removal of a CIDR with pods: %v", err)
	}
	checkInvariants(t, f.s)

	evicted, err := f.s.RemoveENI("eni-b", true)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range evicted {
		got = append(got, a.Key.ContainerID+"="+a.Addr.String()+"@"+a.ENIID)
	}
	slices.Sort(got)
	if want := []string{"c0001=10.0.1.0@eni-b", "c0002=10.0.1.1@eni-b"}; !slices.Equal(got, want) {
		t.Fatalf("evicted %v, want %v", got, want)
	}
	checkInvariants(t, f.s)
	// Upstream subtracts the ENI's CIDRs twice here; we must not
	// (docs/compatibility.md, "Warm-pool arithmetic").
	// The evicted pods are kept pending (quarantine.go): they count as
	// pods, not in any CIDR's figures.
	if st := f.s.Stats(); st.TotalIPs != 16 || st.AssignedIPs != 0 || st.CoolingIPs != 0 || st.Pods != 2 || st.Pending != 2 ||
		st.TotalCIDRs != 1 || st.ENIs != 1 {
		t.Fatalf("after forced removal: %+v", st)
	}
	if a, ok := f.s.Lookup(podKey(1)); !ok || a.Addr != ip("10.0.1.0") || a.ENIID != "" {
		t.Fatalf("evicted pod: %+v %v, want it pending with 10.0.1.0", a, ok)
	}
	if _, err := f.s.RemoveENI("eni-b", true); !errors.Is(err, ErrUnknownENI) {
		t.Fatalf("removing twice: %v", err)
	}
	// The same CIDRs can come back (EC2 re-attached them) once removed.
	f.eni("eni-c", 2, "10.0.1.0/28")
	f.assign(4)
}

func TestSnapshotIsDeepCopy(t *testing.T) {
	f := newFixture(t, ModePrefixIPv4, time.Minute)
	f.eni("eni-a", 0, "10.0.0.16/28", "10.0.0.0/28")
	f.assign(1)
	f.assign(2)
	f.unassign(1)
	snap := f.s.Snapshot()
	if len(snap) != 1 || len(snap[0].CIDRs) != 2 {
		t.Fatalf("snapshot: %+v", snap)
	}
	c := snap[0].CIDRs[0]
	if c.Prefix != pfx("10.0.0.0/28") || c.Size != 16 || c.Assigned != 1 || c.Cooling != 1 ||
		len(c.Allocations) != 1 || c.Allocations[0].Addr != ip("10.0.0.1") ||
		len(c.CoolingList) != 1 || c.CoolingList[0].Addr != ip("10.0.0.0") {
		t.Fatalf("snapshot CIDR: %+v", c)
	}
	snap[0].CIDRs[0].Allocations[0].Key.ContainerID = "mutated"
	if a, ok := f.s.Lookup(podKey(2)); !ok || a.Key != podKey(2) {
		t.Fatal("mutating a snapshot changed the store")
	}
	if got := f.s.AllocatedIPs(); len(got) != 1 || got[0].Addr != ip("10.0.0.1") || got[0].ENIID != "eni-a" {
		t.Fatalf("AllocatedIPs: %+v", got)
	}
	if e, ok := f.s.ENI("eni-a"); !ok || e.AssignedIPs != 1 || e.CoolingIPs != 1 || e.CIDRs[0].Allocations != nil {
		t.Fatalf("ENI(eni-a): %+v", e)
	}
}

// AssignedIn answers what ENI's counters say, for the ENI and the CIDR an
// assignment names, through assigns, releases and cooldowns.
func TestAssignedInMatchesENI(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, time.Second)
	f.eni("eni-a", 0, "10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32")
	f.eni("eni-b", 1, "10.0.1.1/32")
	check := func(a Assignment, wantENI, wantCIDR int) {
		t.Helper()
		e, c, ok := f.s.AssignedIn(a.ENIID, a.CIDR)
		info, _ := f.s.ENI(a.ENIID)
		if !ok || e != wantENI || c != wantCIDR || e != info.AssignedIPs {
			t.Errorf("AssignedIn(%s, %s) = %d, %d, %v; want %d, %d (ENI says %d)", a.ENIID, a.CIDR, e, c, ok, wantENI, wantCIDR, info.AssignedIPs)
		}
	}
	a0, a1 := f.assign(0), f.assign(1)
	check(a0, 2, 1)
	check(a1, 2, 1)
	f.unassign(0)
	check(a0, 1, 0)
	f.clock.advance(2 * time.Second)
	check(a1, 1, 1)
	if _, c, ok := f.s.AssignedIn("eni-a", pfx("10.0.1.1/32")); !ok || c != -1 {
		t.Errorf("a CIDR of another ENI: %d, %v; want -1, true", c, ok)
	}
	if _, _, ok := f.s.AssignedIn("eni-x", a0.CIDR); ok {
		t.Error("an unknown ENI: ok")
	}
}
