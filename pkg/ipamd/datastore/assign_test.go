package datastore

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// step is one operation of a table test: assign (pod > 0) or unassign
// (pod < 0) of podKey(|pod|), expecting the address want ("" = error).
type step struct {
	pod  int
	want string
}

func runSteps(t *testing.T, f *fixture, steps []step) {
	t.Helper()
	for i, st := range steps {
		var a Assignment
		var err error
		if st.pod > 0 {
			a, err = f.s.Assign(podKey(st.pod), podMeta(st.pod))
		} else {
			a, err = f.s.Unassign(podKey(-st.pod))
		}
		switch {
		case st.want == "" && err == nil:
			t.Fatalf("step %d (pod %d): got %s, want an error", i, st.pod, a.Addr)
		case st.want != "" && err != nil:
			t.Fatalf("step %d (pod %d): %v", i, st.pod, err)
		case st.want != "" && a.Addr != ip(st.want):
			t.Fatalf("step %d (pod %d): got %s, want %s", i, st.pod, a.Addr, st.want)
		}
		checkInvariants(t, f.s)
	}
}

func TestAssignOrder(t *testing.T) {
	tests := []struct {
		name  string
		mode  Mode
		setup func(f *fixture)
		steps []step
	}{
		{
			name: "secondary: lowest device first, lowest address within",
			mode: ModeSecondaryIPv4,
			setup: func(f *fixture) {
				f.eni("eni-b", 1, "10.0.1.12/32", "10.0.1.11/32")
				f.eni("eni-a", 0, "10.0.0.12/32", "10.0.0.11/32")
			},
			steps: []step{{1, "10.0.0.11"}, {2, "10.0.0.12"}, {3, "10.0.1.11"}, {4, "10.0.1.12"}, {5, ""}},
		},
		{
			name: "secondary: a freed address on the busier ENI is refilled before the emptier ENI",
			mode: ModeSecondaryIPv4,
			setup: func(f *fixture) {
				f.eni("eni-a", 0, "10.0.0.11/32", "10.0.0.12/32", "10.0.0.13/32")
				f.eni("eni-b", 1, "10.0.1.11/32", "10.0.1.12/32", "10.0.1.13/32")
			},
			steps: []step{
				{1, "10.0.0.11"}, {2, "10.0.0.12"}, {3, "10.0.0.13"}, {4, "10.0.1.11"}, {5, "10.0.1.12"},
				{-1, "10.0.0.11"}, {-2, "10.0.0.12"}, // eni-a holds 1, eni-b holds 2
				{6, "10.0.1.13"}, {7, "10.0.0.11"}, {8, "10.0.0.12"}, {9, ""},
			},
		},
		{
			name: "prefix: all 16 addresses of a /28 including the network address, then the next prefix",
			mode: ModePrefixIPv4,
			setup: func(f *fixture) {
				f.eni("eni-a", 0, "10.0.0.16/28", "10.0.0.0/28")
			},
			steps: func() []step {
				var s []step
				for i := 0; i < 16; i++ {
					s = append(s, step{i + 1, "10.0.0." + itoa(i)})
				}
				return append(s, step{17, "10.0.0.16"})
			}(),
		},
		{
			name: "prefix: the busier prefix is filled before the lower one",
			mode: ModePrefixIPv4,
			setup: func(f *fixture) {
				f.eni("eni-a", 0, "10.0.0.0/28", "10.0.0.16/28")
			},
			steps: func() []step {
				var s []step
				for i := 1; i <= 18; i++ {
					s = append(s, step{i, ""})
				}
				// fill both: 1..16 in the first, 17, 18 in the second
				for i := range s {
					s[i].want = "10.0.0." + itoa(i)
				}
				for i := 1; i <= 15; i++ {
					s = append(s, step{-i, "10.0.0." + itoa(i-1)})
				}
				// first /28 holds 1 (pod 16 at .15), second holds 2: second wins
				return append(s, step{19, "10.0.0.18"}, step{20, "10.0.0.19"})
			}(),
		},
		{
			name: "prefix: the ENI with the most pods is preferred over a lower device number",
			mode: ModePrefixIPv4,
			setup: func(f *fixture) {
				f.eni("eni-a", 0, "10.0.0.0/28")
				f.eni("eni-b", 1, "10.0.1.0/28")
			},
			steps: func() []step {
				var s []step
				for i := 1; i <= 19; i++ { // 16 on eni-a, 3 on eni-b
					want := "10.0.0." + itoa(i-1)
					if i > 16 {
						want = "10.0.1." + itoa(i-17)
					}
					s = append(s, step{i, want})
				}
				for i := 1; i <= 14; i++ { // eni-a keeps 2, eni-b has 3
					s = append(s, step{-i, "10.0.0." + itoa(i-1)})
				}
				return append(s, step{20, "10.0.1.3"})
			}(),
		},
		{
			name: "ipv6: addresses of a /80 from the start of the prefix",
			mode: ModeIPv6,
			setup: func(f *fixture) {
				f.eni("eni-a", 0, "2001:db8:1:2:3:4::/96", "2001:db8:0:0:1::/80")
			},
			steps: []step{{1, "2001:db8::1:0:0:0"}, {2, "2001:db8::1:0:0:1"}, {-1, "2001:db8::1:0:0:0"}, {3, "2001:db8::1:0:0:0"}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.mode, 0)
			tc.setup(f)
			checkInvariants(t, f.s)
			runSteps(t, f, tc.steps)
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestAssignIdempotentAndDeleteTwice(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	f.eni("eni-a", 0, "10.0.0.11/32", "10.0.0.12/32")
	first := f.assign(1)
	again := f.assign(1)
	if again != first {
		t.Fatalf("second ADD of the same key: got %+v, want %+v", again, first)
	}
	if st := f.s.Stats(); st.AssignedIPs != 1 || st.Pods != 1 {
		t.Fatalf("after idempotent ADD: %+v, want one assigned", st)
	}
	if first.ENIID != "eni-a" || first.DeviceNumber != 0 || first.RouteTableID != 1 || first.CIDR != pfx("10.0.0.11/32") {
		t.Fatalf("assignment lacks ENI facts: %+v", first)
	}
	del := f.unassign(1)
	if del.Addr != first.Addr || del.Meta != podMeta(1) || del.ENIID != "eni-a" {
		t.Fatalf("DEL returned %+v, want what ADD gave", del)
	}
	_, err := f.s.Unassign(podKey(1))
	if !errors.Is(err, ErrUnknownPod) || !strings.Contains(err.Error(), "datastore: unknown pod") {
		t.Fatalf("second DEL: %v, want ErrUnknownPod with upstream's text", err)
	}
	if !strings.Contains(err.Error(), podKey(1).String()) {
		t.Fatalf("second DEL error %q does not name the key", err)
	}
	checkInvariants(t, f.s)
}

func TestUnassignMigratedPlaceholder(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 0)
	f.eni("eni-a", 0, "10.0.0.11/32")
	migrated := Key{NetworkName: MigratedNetworkName, ContainerID: "abc", IfName: MigratedIfName}
	if _, err := f.s.Assign(migrated, Metadata{}); err != nil {
		t.Fatal(err)
	}
	got, err := f.s.Unassign(Key{NetworkName: "aws-cni", ContainerID: "abc", IfName: "eth0"})
	if err != nil || got.Addr != ip("10.0.0.11") {
		t.Fatalf("DEL with real names of a migrated entry: %+v, %v", got, err)
	}
	if _, err := f.s.Unassign(Key{NetworkName: "aws-cni", ContainerID: "other", IfName: "eth0"}); !errors.Is(err, ErrUnknownPod) {
		t.Fatalf("placeholder must only match the same container: %v", err)
	}
	checkInvariants(t, f.s)
}

func TestCooldown(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 30*time.Second)
	f.eni("eni-a", 0, "10.0.0.11/32", "10.0.0.12/32")
	runSteps(t, f, []step{{1, "10.0.0.11"}, {-1, "10.0.0.11"}, {2, "10.0.0.12"}, {-2, "10.0.0.12"}})

	st := f.s.Stats()
	if st.CoolingIPs != 2 || st.AvailableIPs != 0 || st.AssignedIPs != 0 || st.TotalIPs != 2 || st.FreeCIDRs != 0 {
		t.Fatalf("two addresses cooling: %+v", st)
	}
	_, err := f.s.Assign(podKey(3), podMeta(3))
	var nae *NoAvailableAddressError
	if !errors.As(err, &nae) || !errors.Is(err, ErrNoAvailableAddress) {
		t.Fatalf("ADD while everything cools: %v, want *NoAvailableAddressError", err)
	}
	if nae.Cooling != 2 || !nae.CoolingUntil.Equal(f.clock.now().Add(30*time.Second)) || !strings.Contains(err.Error(), "2 cooling down") {
		t.Fatalf("cooling error lacks the reason: %+v (%v)", nae, err)
	}
	f.clock.advance(30*time.Second - time.Nanosecond)
	if _, err := f.s.Assign(podKey(3), podMeta(3)); !errors.Is(err, ErrNoAvailableAddress) {
		t.Fatalf("ADD 1ns before cooldown ends: %v", err)
	}
	f.clock.advance(time.Nanosecond)
	if st := f.s.Stats(); st.CoolingIPs != 0 || st.AvailableIPs != 2 || st.FreeCIDRs != 2 {
		t.Fatalf("after cooldown: %+v", st)
	}
	runSteps(t, f, []step{{3, "10.0.0.11"}})
}

func TestCooldownPrefersFreshAddresses(t *testing.T) {
	f := newFixture(t, ModePrefixIPv4, 30*time.Second)
	f.eni("eni-a", 0, "10.0.0.0/28")
	runSteps(t, f, []step{{1, "10.0.0.0"}, {2, "10.0.0.1"}, {-1, "10.0.0.0"}, {3, "10.0.0.2"}})
	f.clock.advance(30 * time.Second)
	runSteps(t, f, []step{{4, "10.0.0.0"}, {5, "10.0.0.3"}})
}

func TestNoAvailableAddressReasons(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(f *fixture)
		reason string
	}{
		{"no ENIs", func(f *fixture) {}, "no ENIs"},
		{"no CIDRs of the mode", func(f *fixture) { f.eni("eni-a", 0, "10.0.0.0/28") }, "no CIDRs of the active mode (secondary-ipv4)"},
		{"all assigned", func(f *fixture) {
			f.eni("eni-a", 0, "10.0.0.11/32")
			f.assign(1)
		}, "all 1 addresses assigned"},
		{"all excluded", func(f *fixture) {
			f.eniInfo(ENI{ID: "eni-a", ExcludedForPods: true}, "10.0.0.11/32")
		}, "all 1 ENIs are excluded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, ModeSecondaryIPv4, 0)
			tc.setup(f)
			_, err := f.s.Assign(podKey(99), podMeta(99))
			if !errors.Is(err, ErrNoAvailableAddress) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("got %v, want ErrNoAvailableAddress saying %q", err, tc.reason)
			}
			if !strings.Contains(err.Error(), podKey(99).String()) {
				t.Fatalf("error %q does not name the key", err)
			}
			checkInvariants(t, f.s)
		})
	}
}

func TestModeSwitch(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 0)
	f.eni("eni-a", 0, "10.0.0.11/32", "10.0.0.12/32", "10.0.0.32/28")
	runSteps(t, f, []step{{1, "10.0.0.11"}})
	if st := f.s.Stats(); st.TotalIPs != 2 || st.AssignedIPs != 1 || st.TotalPrefixes != 1 || st.FreePrefixes != 1 {
		t.Fatalf("secondary mode stats: %+v", st)
	}
	if err := f.s.SetMode(ModePrefixIPv4); err != nil {
		t.Fatal(err)
	}
	runSteps(t, f, []step{{2, "10.0.0.32"}, {3, "10.0.0.33"}})
	st := f.s.Stats()
	if st.Mode != ModePrefixIPv4 || st.TotalIPs != 16 || st.AssignedIPs != 2 || st.Pods != 3 || st.TotalCIDRs != 1 || st.FreePrefixes != 0 {
		t.Fatalf("prefix mode stats: %+v", st)
	}
	if a, ok := f.s.Lookup(podKey(1)); !ok || a.Addr != ip("10.0.0.11") {
		t.Fatalf("pod on a /32 must keep its address across the switch: %+v %v", a, ok)
	}
	runSteps(t, f, []step{{-1, "10.0.0.11"}})
	if err := f.s.SetMode(ModeSecondaryIPv4); err != nil {
		t.Fatal(err)
	}
	runSteps(t, f, []step{{4, "10.0.0.11"}})
	if err := f.s.SetMode(Mode(7)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("SetMode(7): %v", err)
	}
}

func TestExcludedENI(t *testing.T) {
	f := newFixture(t, ModeSecondaryIPv4, 0)
	f.eni("eni-a", 0, "10.0.0.11/32", "10.0.0.12/32")
	f.eni("eni-b", 1, "10.0.1.11/32")
	runSteps(t, f, []step{{1, "10.0.0.11"}})
	if err := f.s.SetExcluded("eni-a", true); err != nil {
		t.Fatal(err)
	}
	checkInvariants(t, f.s)
	if st := f.s.Stats(); st.TotalIPs != 1 || st.AvailableIPs != 1 || st.AssignedIPs != 0 || st.Pods != 1 || st.ExcludedENIs != 1 {
		t.Fatalf("stats with eni-a excluded: %+v", st)
	}
	runSteps(t, f, []step{{2, "10.0.1.11"}, {3, ""}, {-1, "10.0.0.11"}})
	if err := f.s.SetExcluded("eni-a", false); err != nil {
		t.Fatal(err)
	}
	runSteps(t, f, []step{{3, "10.0.0.11"}})
	if err := f.s.SetExcluded("eni-x", true); !errors.Is(err, ErrUnknownENI) || !strings.Contains(err.Error(), "eni-x") {
		t.Fatalf("SetExcluded of an unknown ENI: %v", err)
	}
}
