package networkutils

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedSetupENIDropsStaleRuleOfItsTable: ENI A (device 1,
// primary address 10.0.0.99 in the primary ENI's subnet) went away while
// ipamd was down, so nothing deleted its `from 10.0.0.99 lookup 2` rule.
// ENI B now attaches at device 1 and fills table 2, and EC2 hands
// 10.0.0.99 to a pod on the primary ENI. The stale rule would send that
// pod's VPC traffic out of B, whose source/destination check drops it:
// setting up B removes every other priority-32765 rule into its table.
func TestPrivilegedSetupENIDropsStaleRuleOfItsTable(t *testing.T) {
	node, vpc, pod := testutil.NewNS(t), testutil.NewNS(t), testutil.NewNS(t)
	const macB = "02:00:00:00:03:01"
	veth(t, node, "eth0", primaryMAC, []string{"10.0.0.10/24"}, vpc, "vpc-eth0", []string{"10.0.0.1/24"})
	veth(t, node, "eth1", macB, nil, vpc, "vpc-eth1", []string{"10.0.1.1/24"})
	veth(t, node, "eni0pod", "02:00:00:00:aa:02", nil, pod, "eth0", []string{"10.0.0.99/32"})
	do(t, node, func() error { return writeSysctl("/proc/sys/net/ipv4/ip_forward", "1") })
	sh(t, node, "ip", "route", "add", "10.0.0.99/32", "dev", "eni0pod", "scope", "link")
	sh(t, node, "ip", "rule", "add", "to", "10.0.0.99", "lookup", "main", "priority", "512")
	// A's rule, and a rule of another ENI's table that must stay.
	sh(t, node, "ip", "rule", "add", "from", "10.0.0.99", "lookup", "2", "priority", "32765")
	sh(t, node, "ip", "rule", "add", "from", "10.0.2.30", "lookup", "3", "priority", "32765")

	b := ENI{MAC: mustMAC(t, macB), PrimaryIP: netip.MustParseAddr("10.0.1.20"), Subnet: netip.MustParsePrefix("10.0.1.0/24"), DeviceNumber: 1, MTU: 1500}
	do(t, node, func() error { return New(nil).SetupENI(context.Background(), b) })

	do(t, node, func() error {
		want := []string{"ipv4 32765: from 10.0.1.20/32 lookup 2", "ipv4 32765: from 10.0.2.30/32 lookup 3"}
		got := ruleStrings(t, netlink.FAMILY_V4, hostcontract.PriorityENI)
		slices.Sort(got)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("priority-32765 rules (-want +got):\n%s", diff)
		}
		return nil
	})
	if out := sh(t, node, "ip", "route", "get", "10.0.0.77", "from", "10.0.0.99", "iif", "eni0pod"); !strings.Contains(out, "dev eth0") {
		t.Errorf("the primary-ENI pod's VPC traffic does not leave by the primary ENI:\n%s", out)
	}
}

// TestPrivilegedSetupTrunkENIDropsStaleRuleOfItsTable: the same for a
// trunk ENI, which has no rule of its own: none may point into its table.
func TestPrivilegedSetupTrunkENIDropsStaleRuleOfItsTable(t *testing.T) {
	node, vpc := testutil.NewNS(t), testutil.NewNS(t)
	const macT = "02:00:00:00:03:02"
	veth(t, node, "eth1", macT, nil, vpc, "vpc-eth1", []string{"10.0.1.1/24"})
	sh(t, node, "ip", "rule", "add", "from", "10.0.0.99", "lookup", "2", "priority", "32765")
	sh(t, node, "ip", "rule", "add", "from", "10.0.2.30", "lookup", "3", "priority", "32765")
	trunk := ENI{MAC: mustMAC(t, macT), PrimaryIP: netip.MustParseAddr("10.0.1.20"), Subnet: netip.MustParsePrefix("10.0.1.0/24"), DeviceNumber: 1, MTU: 1500, Trunk: true}
	do(t, node, func() error { return New(nil).SetupENI(context.Background(), trunk) })
	do(t, node, func() error {
		want := []string{"ipv4 32765: from 10.0.2.30/32 lookup 3"}
		if diff := cmp.Diff(want, ruleStrings(t, netlink.FAMILY_V4, hostcontract.PriorityENI)); diff != "" {
			t.Errorf("priority-32765 rules after a trunk ENI took table 2 (-want +got):\n%s", diff)
		}
		return nil
	})
}
