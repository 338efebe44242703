package networkutils

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// Everything in this package relies on children exec'd from a thread
// locked inside ns.Do (iptables) inheriting that thread's netns.
func TestPrivilegedExecInheritsThreadNetns(t *testing.T) {
	node := testutil.NewNS(t)
	var st syscall.Stat_t
	if err := syscall.Stat(node.Path(), &st); err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(sh(t, node, "readlink", "/proc/self/ns/net"))
	if want := "net:[" + strconv.FormatUint(st.Ino, 10) + "]"; got != want {
		t.Fatalf("child exec'd inside ns.Do runs in %s, want the test namespace %s", got, want)
	}
	self, err := os.Readlink("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	if self == got {
		t.Fatalf("the test goroutine outside ns.Do is in %s too: the check proves nothing", self)
	}
	// And an iptables chain made through go-iptables inside the namespace
	// is visible there with the plain binary.
	do(t, node, func() error {
		c, err := newIPTClient("iptables-legacy", 0)
		if err != nil {
			return err
		}
		return c.ipt.NewChain("nat", "NETNS-PROBE")
	})
	if out := sh(t, node, "iptables-legacy", "-t", "nat", "-S", "NETNS-PROBE"); !strings.Contains(out, "-N NETNS-PROBE") {
		t.Fatalf("chain not found in the namespace: %q", out)
	}
}

type eniSnapshot struct {
	Addrs []string
	Table []string
	Main  []string
	Rules []string
	MTU   int
	Up    bool
}

func snapshotENI(t *testing.T, link string, table int) eniSnapshot {
	l, err := netlink.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	return eniSnapshot{
		Addrs: addrStrings(t, link, netlink.FAMILY_V4),
		Table: routeStrings(t, netlink.FAMILY_V4, table),
		Main:  routeStrings(t, netlink.FAMILY_V4, hostcontract.MainTable),
		Rules: ruleStrings(t, netlink.FAMILY_V4, hostcontract.PriorityENI),
		MTU:   l.Attrs().MTU,
		Up:    l.Attrs().Flags&net.FlagUp != 0,
	}
}

func TestPrivilegedSetupENI(t *testing.T) {
	node, vpc := testutil.NewNS(t), testutil.NewNS(t)
	const mac = "02:00:00:00:01:01"
	// A stale address from an earlier life of the ENI must go.
	veth(t, node, "eth1", mac, []string{"10.0.9.9/24"}, vpc, "vpc-eth1", []string{"10.0.1.1/24"})
	n := New(nil)
	eni := ENI{MAC: mustMAC(t, mac), PrimaryIP: netip.MustParseAddr("10.0.1.20"), Subnet: netip.MustParsePrefix("10.0.1.0/24"), DeviceNumber: 1}
	ctx := context.Background()

	// A rule left by an earlier device index for the same address.
	do(t, node, func() error {
		return netlink.RuleAdd(ruleSpec{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityENI, Src: netip.MustParsePrefix("10.0.1.20/32"), Table: 7}.netlinkRule())
	})
	do(t, node, func() error { return n.SetupENI(ctx, eni) })
	var first eniSnapshot
	do(t, node, func() error { first = snapshotENI(t, "eth1", 2); return nil })
	want := eniSnapshot{
		Addrs: []string{"10.0.1.20/24"},
		Table: []string{"10.0.1.1/32 dev eth1 scope link", "default via 10.0.1.1 dev eth1"},
		Rules: []string{"ipv4 32765: from 10.0.1.20/32 lookup 2"},
		MTU:   9001,
		Up:    true,
	}
	if diff := cmp.Diff(want, first); diff != "" {
		t.Fatalf("ENI state (-want +got):\n%s", diff)
	}

	// Idempotent: a second run leaves the same state, with no duplicate rule.
	do(t, node, func() error { return n.SetupENI(ctx, eni) })
	do(t, node, func() error {
		if diff := cmp.Diff(first, snapshotENI(t, "eth1", 2)); diff != "" {
			t.Errorf("second SetupENI changed state (-first +second):\n%s", diff)
		}
		return nil
	})

	// The gateway answers through the ENI's table only.
	sh(t, node, "ping", "-c1", "-W2", "-I", "10.0.1.20", "10.0.1.1")

	do(t, node, func() error { return n.TeardownENI(ctx, eni.PrimaryIP, 2) })
	do(t, node, func() error {
		s := snapshotENI(t, "eth1", 2)
		if len(s.Rules) != 0 || len(s.Table) != 0 {
			t.Errorf("after teardown: rules %q, table 2 %q; want none", s.Rules, s.Table)
		}
		return nil
	})
}

func TestPrivilegedSetupENINetworkCard(t *testing.T) {
	node, vpc := testutil.NewNS(t), testutil.NewNS(t)
	const mac = "02:00:00:00:02:02"
	veth(t, node, "eth3", mac, nil, vpc, "vpc-eth3", nil)
	n := New(nil)
	eni := ENI{MAC: mustMAC(t, mac), PrimaryIP: netip.MustParseAddr("10.1.64.7"), Subnet: netip.MustParsePrefix("10.1.64.0/18"), DeviceNumber: 2, NetworkCard: 1, MTU: 1500, Trunk: true}
	do(t, node, func() error { return n.SetupENI(context.Background(), eni) })
	do(t, node, func() error {
		got := snapshotENI(t, "eth3", 10102)
		want := eniSnapshot{
			Addrs: []string{"10.1.64.7/18"},
			Table: []string{"10.1.64.1/32 dev eth3 scope link", "default via 10.1.64.1 dev eth3"},
			MTU:   1500, Up: true,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("trunk ENI on card 1 (-want +got):\n%s", diff)
		}
		return nil
	})
}

// The first ENI on network card 1 is device 0; it gets table 10100 and its
// source rule like any secondary ENI.
func TestPrivilegedSetupENICardOneDeviceZero(t *testing.T) {
	node, vpc := testutil.NewNS(t), testutil.NewNS(t)
	const mac = "02:00:00:00:02:03"
	veth(t, node, "eth4", mac, nil, vpc, "vpc-eth4", nil)
	n := New(nil)
	eni := ENI{MAC: mustMAC(t, mac), PrimaryIP: netip.MustParseAddr("10.1.128.9"), Subnet: netip.MustParsePrefix("10.1.128.0/20"), DeviceNumber: 0, NetworkCard: 1}
	do(t, node, func() error { return n.SetupENI(context.Background(), eni) })
	do(t, node, func() error {
		got := snapshotENI(t, "eth4", 10100)
		want := eniSnapshot{
			Addrs: []string{"10.1.128.9/20"},
			Table: []string{"10.1.128.1/32 dev eth4 scope link", "default via 10.1.128.1 dev eth4"},
			Rules: []string{"ipv4 32765: from 10.1.128.9/32 lookup 10100"},
			MTU:   9001, Up: true,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("card 1 device 0 (-want +got):\n%s", diff)
		}
		return nil
	})
}

func TestPrivilegedSetupENIErrors(t *testing.T) {
	node := testutil.NewNS(t)
	n := New(nil)
	n.linkPatience = 0 // one look
	ctx := context.Background()
	good := ENI{MAC: mustMAC(t, "02:00:00:00:09:09"), PrimaryIP: netip.MustParseAddr("10.0.1.20"), Subnet: netip.MustParsePrefix("10.0.1.0/24"), DeviceNumber: 1}
	var err error
	do(t, node, func() error { err = n.SetupENI(ctx, good); return nil })
	if !errors.Is(err, ErrLinkNotFound) || !strings.Contains(err.Error(), "02:00:00:00:09:09") {
		t.Errorf("absent MAC: got %v, want ErrLinkNotFound naming the MAC", err)
	}
	primary := good
	primary.DeviceNumber = 0
	outside := good
	outside.PrimaryIP = netip.MustParseAddr("10.0.2.20")
	for name, e := range map[string]ENI{"primary ENI": primary, "IP outside subnet": outside} {
		do(t, node, func() error { err = n.SetupENI(ctx, e); return nil })
		if err == nil {
			t.Errorf("%s: SetupENI accepted %+v", name, e)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	n.linkPatience, n.linkFirstPoll = time.Hour, time.Hour
	do(t, node, func() error { err = n.SetupENI(cctx, good); return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context while waiting for the link: got %v", err)
	}
}

func TestPrivilegedPodRules(t *testing.T) {
	node := testutil.NewNS(t)
	n := New(nil)
	ctx := context.Background()
	pod := netip.MustParseAddr("10.0.1.50")
	other := netip.MustParseAddr("10.0.1.51")
	do(t, node, func() error {
		for _, r := range []ruleSpec{
			{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityFromPod, Src: netip.MustParsePrefix("10.0.1.50/32"), Table: 3},
			{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityFromPod, Src: netip.MustParsePrefix("10.0.1.50/32"), Table: 4},
			{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityToPod, Dst: netip.MustParsePrefix("10.0.1.50/32"), Table: hostcontract.MainTable},
			{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityToPod, Dst: netip.MustParsePrefix("10.0.1.51/32"), Table: hostcontract.MainTable},
			{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityFromPod, Src: netip.MustParsePrefix("10.0.1.51/32"), Table: 2},
		} {
			if err := netlink.RuleAdd(r.netlinkRule()); err != nil {
				return err
			}
		}
		if err := n.RestorePodRules(ctx, []PodRule{{IP: pod, Table: 2}}); err != nil {
			return err
		}
		if err := n.RestorePodRules(ctx, []PodRule{{IP: pod, Table: 2}}); err != nil { // idempotent
			return err
		}
		want := []string{
			"ipv4 512: from all to 10.0.1.50/32 lookup main",
			"ipv4 512: from all to 10.0.1.51/32 lookup main",
			"ipv4 1536: from 10.0.1.51/32 lookup 2",
			"ipv4 1536: from 10.0.1.50/32 lookup 2",
		}
		if diff := cmp.Diff(want, ruleStrings(t, netlink.FAMILY_V4, hostcontract.PriorityToPod, hostcontract.PriorityFromPod)); diff != "" {
			t.Errorf("after RestorePodRule (-want +got):\n%s", diff)
		}
		if err := n.DeletePodRules(ctx, other); err != nil {
			return err
		}
		want = []string{"ipv4 512: from all to 10.0.1.50/32 lookup main", "ipv4 1536: from 10.0.1.50/32 lookup 2"}
		if diff := cmp.Diff(want, ruleStrings(t, netlink.FAMILY_V4, hostcontract.PriorityToPod, hostcontract.PriorityFromPod)); diff != "" {
			t.Errorf("after DeletePodRules (-want +got):\n%s", diff)
		}
		return n.DeletePodRules(ctx, other) // nothing left: still fine
	})
}

// TestPrivilegedPodRulesBatch: one RestorePodRules call for several pods
// leaves each exactly the rules a per-pod restore would (a wrong from-pod
// table replaced, a flushed pod's rules added, a main-table pod's from-pod
// rule removed), a bad entry costs the others nothing, and other pods'
// rules are untouched; one DeletePodRules call removes several pods'.
func TestPrivilegedPodRulesBatch(t *testing.T) {
	node := testutil.NewNS(t)
	n := New(nil)
	ctx := context.Background()
	p := netip.MustParsePrefix
	do(t, node, func() error {
		for _, r := range []ruleSpec{
			{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityToPod, Dst: p("10.0.1.50/32"), Table: hostcontract.MainTable},
			{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityFromPod, Src: p("10.0.1.50/32"), Table: 4},
			{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityToPod, Dst: p("10.0.1.52/32"), Table: hostcontract.MainTable},
			{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityFromPod, Src: p("10.0.1.52/32"), Table: 3},
			{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityToPod, Dst: p("10.0.1.99/32"), Table: hostcontract.MainTable},
			{Family: netlink.FAMILY_V4, Priority: hostcontract.PriorityFromPod, Src: p("10.0.1.99/32"), Table: 5},
		} {
			if err := netlink.RuleAdd(r.netlinkRule()); err != nil {
				return err
			}
		}
		pods := []PodRule{
			{IP: netip.MustParseAddr("10.0.1.50"), Table: 2},                      // wrong table
			{IP: netip.MustParseAddr("10.0.1.51"), Table: 2},                      // flushed
			{IP: netip.MustParseAddr("10.0.1.52"), Table: hostcontract.MainTable}, // now on the primary ENI
			{IP: netip.MustParseAddr("10.0.1.53"), Table: 0},                      // bad entry
		}
		if err := n.RestorePodRules(ctx, pods); err == nil || !strings.Contains(err.Error(), "10.0.1.53") {
			t.Errorf("RestorePodRules error %v, want the bad entry named", err)
		}
		if err := n.RestorePodRules(ctx, pods[:3]); err != nil { // idempotent
			return err
		}
		want := []string{
			"ipv4 512: from all to 10.0.1.50/32 lookup main",
			"ipv4 512: from all to 10.0.1.52/32 lookup main",
			"ipv4 512: from all to 10.0.1.99/32 lookup main",
			"ipv4 512: from all to 10.0.1.51/32 lookup main",
			"ipv4 1536: from 10.0.1.99/32 lookup 5",
			"ipv4 1536: from 10.0.1.51/32 lookup 2",
			"ipv4 1536: from 10.0.1.50/32 lookup 2",
		}
		got := ruleStrings(t, netlink.FAMILY_V4, hostcontract.PriorityToPod, hostcontract.PriorityFromPod)
		if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("after RestorePodRules (-want +got):\n%s", diff)
		}
		if err := n.DeletePodRules(ctx, netip.MustParseAddr("10.0.1.50"), netip.MustParseAddr("10.0.1.51")); err != nil {
			return err
		}
		want = []string{
			"ipv4 512: from all to 10.0.1.52/32 lookup main",
			"ipv4 512: from all to 10.0.1.99/32 lookup main",
			"ipv4 1536: from 10.0.1.99/32 lookup 5",
		}
		got = ruleStrings(t, netlink.FAMILY_V4, hostcontract.PriorityToPod, hostcontract.PriorityFromPod)
		if diff := cmp.Diff(want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("after DeletePodRules (-want +got):\n%s", diff)
		}
		return nil
	})
}

func TestPrivilegedSetupENIIPv6(t *testing.T) {
	node, vpc := testutil.NewNS(t), testutil.NewNS(t)
	const mac = "02:00:00:00:06:06"
	veth(t, node, "eth2", mac, nil, vpc, "vpc-eth2", nil)
	n := New(nil)
	eni := ENI{MAC: mustMAC(t, mac), PrimaryIP: netip.MustParseAddr("2600:1f14:aa:bb::20"), Subnet: netip.MustParsePrefix("2600:1f14:aa:bb::/64"), DeviceNumber: 2}
	for range 2 { // idempotent
		do(t, node, func() error { return n.SetupENI(context.Background(), eni) })
	}
	do(t, node, func() error {
		got := struct{ Addrs, Table, Main, Rules []string }{
			Addrs: addrStrings(t, "eth2", netlink.FAMILY_V6),
			Table: routeStrings(t, netlink.FAMILY_V6, 3),
			Rules: ruleStrings(t, netlink.FAMILY_V6, hostcontract.PriorityENI),
		}
		for _, r := range routeStrings(t, netlink.FAMILY_V6, hostcontract.MainTable) {
			if strings.HasPrefix(r, "2600:1f14:aa:bb::/64") {
				got.Main = append(got.Main, r)
			}
		}
		want := struct{ Addrs, Table, Main, Rules []string }{
			Addrs: []string{"2600:1f14:aa:bb::20/64"},
			Table: []string{"default via fe80:ec2::1 dev eth2", "fe80:ec2::1/128 dev eth2"}, // IPv6 routes carry no scope,
			Rules: []string{"ipv6 32765: from 2600:1f14:aa:bb::20/128 lookup 3"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("IPv6 ENI (-want +got):\n%s", diff)
		}
		return nil
	})
}
