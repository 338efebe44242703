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
	for _, o := range []Options{{Mode: 9}, {CooldownPeriod: -time.Second}, {MinENIAge: -time.Second}} {
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
	if st := f.s.Stats(); st.TotalIPs != 16 || st.AssignedIPs != 0 || st.CoolingIPs != 0 || st.Pods != 0 || st.TotalCIDRs != 1 || st.ENIs != 1 {
		t.Fatalf("after forced removal: %+v", st)
	}
	if _, ok := f.s.Lookup(podKey(1)); ok {
		t.Fatal("evicted pod still found")
	}
	if _, err := f.s.Unassign(podKey(1)); !errors.Is(err, ErrUnknownPod) {
		t.Fatalf("DEL of an evicted pod: %v", err)
	}
	if _, err := f.s.RemoveENI("eni-b", true); !errors.Is(err, ErrUnknownENI) {
		t.Fatalf("removing twice: %v", err)
	}
	// The same CIDRs can come back (EC2 re-attached them) once removed.
	f.eni("eni-c", 2, "10.0.1.0/28")
	f.assign(4)
}

func TestRemoveCIDRForce(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, time.Minute)
	f.eni("eni-a", 0, "10.0.0.11/32", "10.0.0.12/32")
	f.assign(1)
	f.assign(2)
	f.unassign(2)
	ev, err := f.s.RemoveCIDR("eni-a", pfx("10.0.0.11/32"), true)
	if err != nil || len(ev) != 1 || ev[0].Key != podKey(1) {
		t.Fatalf("forced CIDR removal: %+v, %v", ev, err)
	}
	checkInvariants(t, f.s)
	// A cooling address does not block a plain removal.
	if ev, err := f.s.RemoveCIDR("eni-a", pfx("10.0.0.12/32"), false); err != nil || len(ev) != 0 {
		t.Fatalf("removal of a cooling CIDR: %+v, %v", ev, err)
	}
	checkInvariants(t, f.s)
	if st := f.s.Stats(); st.TotalIPs != 0 || st.CoolingIPs != 0 || st.TotalCIDRs != 0 {
		t.Fatalf("after removals: %+v", st)
	}
	if _, err := f.s.RemoveCIDR("eni-a", pfx("10.0.0.12/32"), false); !errors.Is(err, ErrUnknownCIDR) {
		t.Fatalf("removing twice: %v", err)
	}
	f.eni("eni-b", 1, "10.0.1.11/32")
	if _, err := f.s.RemoveCIDR("eni-a", pfx("10.0.1.11/32"), false); !errors.Is(err, ErrUnknownCIDR) || !strings.Contains(err.Error(), "eni-a") {
		t.Fatalf("removing a CIDR from the wrong ENI: %v", err)
	}
}

func TestFreeableCIDRs(t *testing.T) {
	f := newFixture(t, ModePrefixIPv4, 30*time.Second)
	f.eni("eni-0", 0, "10.0.0.0/28", "10.0.0.16/28")
	f.eni("eni-1", 1, "10.0.1.0/28", "10.0.1.16/28", "10.0.1.32/28")
	f.eni("eni-2", 2, "10.0.2.0/28", "10.0.2.16/28")
	f.eniInfo(ENI{ID: "eni-3", DeviceNumber: 3}, "10.0.3.0/28")
	// eni-0: one pod; eni-1: 17 pods (first prefix full, one in the second);
	// eni-2: one pod that left and whose address still cools; eni-3: excluded.
	if err := f.s.SetExcluded("eni-3", true); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"eni-0", "eni-2"} {
		if err := f.s.SetExcluded(id, true); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 17; i++ {
		f.assign(i) // all on eni-1
	}
	if err := f.s.SetExcluded("eni-1", true); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetExcluded("eni-2", false); err != nil {
		t.Fatal(err)
	}
	f.assign(18) // eni-2 10.0.2.0
	f.unassign(18)
	if err := f.s.SetExcluded("eni-2", true); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SetExcluded("eni-0", false); err != nil {
		t.Fatal(err)
	}
	f.assign(19) // eni-0 10.0.0.0
	for _, id := range []string{"eni-1", "eni-2"} {
		if err := f.s.SetExcluded(id, false); err != nil {
			t.Fatal(err)
		}
	}
	want := []CIDRRef{
		{"eni-3", pfx("10.0.3.0/28")},  // excluded ENI first
		{"eni-2", pfx("10.0.2.16/28")}, // fewest assigned (0), its cooling prefix is not freeable
		{"eni-1", pfx("10.0.1.32/28")}, // 17 assigned, highest address first
		{"eni-0", pfx("10.0.0.16/28")}, // primary last
	}
	if got := f.s.FreeableCIDRs(0); !slices.Equal(got, want) {
		t.Fatalf("FreeableCIDRs(0) = %v\nwant %v", got, want)
	}
	if got := f.s.FreeableCIDRs(2); !slices.Equal(got, want[:2]) {
		t.Fatalf("FreeableCIDRs(2) = %v", got)
	}
	if st := f.s.Stats(); st.FreeCIDRs != 3 || st.TotalCIDRs != 7 || st.FreePrefixes != 3 {
		t.Fatalf("stats: %+v (excluded eni-3 not counted)", st)
	}
	f.clock.advance(30 * time.Second)
	got := f.s.FreeableCIDRs(0)
	if len(got) != 5 || got[1] != (CIDRRef{"eni-2", pfx("10.0.2.16/28")}) || got[2] != (CIDRRef{"eni-2", pfx("10.0.2.0/28")}) {
		t.Fatalf("after cooldown FreeableCIDRs = %v", got)
	}
}

func TestDeletableENI(t *testing.T) {
	base := func(f *fixture) {
		f.eniInfo(ENI{ID: "eni-0", DeviceNumber: 0, IsPrimary: true}, "10.0.0.11/32", "10.0.0.12/32")
		f.eni("eni-1", 1, "10.0.1.11/32", "10.0.1.12/32")
		f.eni("eni-2", 2, "10.0.2.11/32", "10.0.2.12/32", "10.0.2.13/32")
	}
	pdBase := func(f *fixture) {
		f.eniInfo(ENI{ID: "eni-0", DeviceNumber: 0, IsPrimary: true}, "10.0.0.0/28")
		f.eni("eni-1", 1, "10.0.1.0/28")
	}
	tests := []struct {
		name   string
		mode   Mode
		setup  func(f *fixture)
		age    time.Duration
		policy DeletePolicy
		want   string // "" = none
	}{
		{"highest device number first", ModeSecondaryIPv4, base, time.Minute, DeletePolicy{}, "eni-2"},
		{"too young", ModeSecondaryIPv4, base, time.Minute - time.Second, DeletePolicy{}, ""},
		{"primary never", ModeSecondaryIPv4, func(f *fixture) {
			f.eniInfo(ENI{ID: "eni-0", IsPrimary: true}, "10.0.0.11/32")
		}, time.Hour, DeletePolicy{}, ""},
		{"trunk and EFA never", ModeSecondaryIPv4, func(f *fixture) {
			f.eniInfo(ENI{ID: "eni-t", DeviceNumber: 1, IsTrunk: true})
			f.eniInfo(ENI{ID: "eni-e", DeviceNumber: 2, IsEFA: true}, "10.0.2.11/32")
		}, time.Hour, DeletePolicy{}, ""},
		{"pods block", ModeSecondaryIPv4, func(f *fixture) {
			base(f)
			for _, id := range []string{"eni-0", "eni-1"} {
				if err := f.s.SetExcluded(id, true); err != nil {
					f.t.Fatal(err)
				}
			}
			f.assign(1) // eni-2
			for _, id := range []string{"eni-0", "eni-1"} {
				if err := f.s.SetExcluded(id, false); err != nil {
					f.t.Fatal(err)
				}
			}
		}, time.Minute, DeletePolicy{}, "eni-1"},
		{"cooling blocks", ModeSecondaryIPv4, func(f *fixture) {
			base(f)
			f.clock.advance(time.Minute)
			for i := 1; i <= 7; i++ {
				f.assign(i)
			}
			for i := 1; i <= 7; i++ {
				f.unassign(i)
			}
		}, 29 * time.Second, DeletePolicy{}, ""},
		{"cooling over", ModeSecondaryIPv4, func(f *fixture) {
			base(f)
			f.clock.advance(time.Minute)
			for i := 1; i <= 7; i++ {
				f.assign(i)
			}
			for i := 1; i <= 7; i++ {
				f.unassign(i)
			}
		}, 30 * time.Second, DeletePolicy{}, "eni-2"},
		{"warm IP target met by the others", ModeSecondaryIPv4, base, time.Minute, DeletePolicy{WarmIPTarget: 4}, "eni-2"},
		{"warm IP target needs eni-2, not eni-1", ModeSecondaryIPv4, base, time.Minute, DeletePolicy{WarmIPTarget: 5}, "eni-1"},
		{"warm IP target needs every ENI", ModeSecondaryIPv4, base, time.Minute, DeletePolicy{WarmIPTarget: 6}, ""},
		{"minimum IP target met", ModeSecondaryIPv4, base, time.Minute, DeletePolicy{MinimumIPTarget: 4}, "eni-2"},
		{"minimum IP target needs eni-2", ModeSecondaryIPv4, base, time.Minute, DeletePolicy{MinimumIPTarget: 5}, "eni-1"},
		{"prefix mode rounds the warm IP target to a prefix", ModePrefixIPv4, pdBase, time.Minute, DeletePolicy{WarmIPTarget: 1}, "eni-1"},
		{"prefix mode rounds the warm IP target up", ModePrefixIPv4, pdBase, time.Minute, DeletePolicy{WarmIPTarget: 17}, ""},
		{"prefix mode minimum target rounded", ModePrefixIPv4, pdBase, time.Minute, DeletePolicy{MinimumIPTarget: 20}, ""},
		{"warm prefix target met", ModePrefixIPv4, pdBase, time.Minute, DeletePolicy{WarmPrefixTarget: 1}, "eni-1"},
		{"warm prefix target needs both", ModePrefixIPv4, pdBase, time.Minute, DeletePolicy{WarmPrefixTarget: 2}, ""},
		{"excluded ENIs give no warm addresses", ModeSecondaryIPv4, func(f *fixture) {
			base(f)
			if err := f.s.SetExcluded("eni-1", true); err != nil {
				f.t.Fatal(err)
			}
		}, time.Minute, DeletePolicy{WarmIPTarget: 3}, "eni-1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.mode, 30*time.Second)
			tc.setup(f)
			f.clock.advance(tc.age)
			got, ok := f.s.DeletableENI(tc.policy)
			if tc.want == "" && ok {
				t.Fatalf("got %s, want none", got.ID)
			}
			if tc.want != "" && (!ok || got.ID != tc.want) {
				t.Fatalf("got %q (%v), want %s", got.ID, ok, tc.want)
			}
		})
	}
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
