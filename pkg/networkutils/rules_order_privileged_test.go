package networkutils

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// startRuleMonitor watches node's IPv4 ip rules; a marker is a rule at an
// unused priority from an address standing for the marker.
func startRuleMonitor(t *testing.T, node ns.NetNS) *monitor {
	markers := map[string]string{"monitor-start": "192.0.2.251", "monitor-end": "192.0.2.252"}
	return startMonitor(t, node, func(name string) string {
		sh(t, node, "ip", "rule", "add", "from", markers[name], "lookup", "99", "priority", "7777")
		sh(t, node, "ip", "rule", "del", "from", markers[name], "lookup", "99", "priority", "7777")
		return "from " + markers[name] + " lookup 99"
	}, "ip", "-4", "monitor", "rule")
}

// fewestRules replays `ip monitor rule` lines and returns the fewest rules
// at prio from src present at any moment, starting from have.
func fewestRules(events []string, prio int, src string, have int) int {
	head := strconv.Itoa(prio) + ":\tfrom " + src + " "
	fewest := have
	for _, l := range events {
		switch {
		case strings.HasPrefix(l, "Deleted "+head):
			have--
		case strings.HasPrefix(l, head):
			have++
		}
		fewest = min(fewest, have)
	}
	return fewest
}

// TestPrivilegedRuleMovesAddBeforeDelete: a pod restored onto another
// ENI's table, and an ENI whose rule moves to another table, get their new
// rule before the old one goes: there is no moment without a rule for the
// address, when its traffic would leave by the primary ENI and be dropped.
func TestPrivilegedRuleMovesAddBeforeDelete(t *testing.T) {
	node, vpc := testutil.NewNS(t), testutil.NewNS(t)
	const mac = "02:00:00:00:05:01"
	veth(t, node, "eth1", mac, nil, vpc, "vpc-eth1", []string{"10.0.1.1/24"})
	sh(t, node, "ip", "rule", "add", "from", "10.0.1.50", "lookup", "3", "priority", strconv.Itoa(hostcontract.PriorityFromPod))
	sh(t, node, "ip", "rule", "add", "from", "10.0.1.20", "lookup", "7", "priority", strconv.Itoa(hostcontract.PriorityENI))
	n, ctx := New(nil), context.Background()

	m := startRuleMonitor(t, node)
	do(t, node, func() error {
		return n.RestorePodRules(ctx, []PodRule{{IP: netip.MustParseAddr("10.0.1.50"), Table: 2}})
	})
	do(t, node, func() error {
		return n.SetupENI(ctx, ENI{MAC: mustMAC(t, mac), PrimaryIP: netip.MustParseAddr("10.0.1.20"), Subnet: netip.MustParsePrefix("10.0.1.0/24"), DeviceNumber: 1})
	})
	events := m.stop(t)

	if got := fewestRules(events, hostcontract.PriorityFromPod, "10.0.1.50", 1); got < 1 {
		t.Errorf("restoring the pod onto table 2 left it without a from-pod rule for a moment; rule events:\n%s", strings.Join(events, "\n"))
	}
	if got := fewestRules(events, hostcontract.PriorityENI, "10.0.1.20", 1); got < 1 {
		t.Errorf("moving the ENI's rule to table 2 left its address without one for a moment; rule events:\n%s", strings.Join(events, "\n"))
	}
	if out := sh(t, node, "ip", "rule"); !strings.Contains(out, "1536:\tfrom 10.0.1.50 lookup 2") || strings.Contains(out, "lookup 3") ||
		!strings.Contains(out, "32765:\tfrom 10.0.1.20 lookup 2") || strings.Contains(out, "lookup 7") {
		t.Errorf("final rules:\n%s", out)
	}
}
