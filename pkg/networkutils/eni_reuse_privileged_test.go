package networkutils

import (
	"context"
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedTeardownLeavesTheTableToItsNewENI: ENI A (device 1,
// table 2) is detached and EC2 attaches ENI B at device 1. ipamd's
// reconcile sets B up before it tears A down, so A's teardown finds table
// 2 holding B's routes: they must stay, and B's address must still reach
// its gateway; A's rule goes.
func TestPrivilegedTeardownLeavesTheTableToItsNewENI(t *testing.T) {
	node, vpc := testutil.NewNS(t), testutil.NewNS(t)
	const macA, macB = "02:00:00:00:04:01", "02:00:00:00:04:02"
	veth(t, node, "eth1", macA, nil, vpc, "vpc-eth1", []string{"10.0.1.1/24"})
	veth(t, node, "eth2", macB, nil, vpc, "vpc-eth2", []string{"10.0.2.1/24"})
	a := ENI{MAC: mustMAC(t, macA), PrimaryIP: netip.MustParseAddr("10.0.1.20"), Subnet: netip.MustParsePrefix("10.0.1.0/24"), DeviceNumber: 1, MTU: 1500}
	b := ENI{MAC: mustMAC(t, macB), PrimaryIP: netip.MustParseAddr("10.0.2.20"), Subnet: netip.MustParsePrefix("10.0.2.0/24"), DeviceNumber: 1, MTU: 1500}
	n, ctx := New(nil), context.Background()
	table := hostcontract.RouteTable(0, 1)

	do(t, node, func() error { return n.SetupENI(ctx, a) })
	// Detach: the kernel removes A's link and the routes through it.
	sh(t, node, "ip", "link", "del", "eth1")
	do(t, node, func() error { return n.SetupENI(ctx, b) })
	do(t, node, func() error { return n.TeardownENI(ctx, a.PrimaryIP, table) })

	do(t, node, func() error {
		want := eniSnapshot{
			Addrs: []string{"10.0.2.20/24"},
			Table: []string{"10.0.2.1/32 dev eth2 scope link", "default via 10.0.2.1 dev eth2"},
			Rules: []string{"ipv4 32765: from 10.0.2.20/32 lookup 2"},
			MTU:   1500,
			Up:    true,
		}
		if diff := cmp.Diff(want, snapshotENI(t, "eth2", table)); diff != "" {
			t.Errorf("B's state after A's teardown (-want +got):\n%s", diff)
		}
		return nil
	})
	sh(t, node, "ping", "-c1", "-W2", "-I", "10.0.2.20", "10.0.2.1")
}
