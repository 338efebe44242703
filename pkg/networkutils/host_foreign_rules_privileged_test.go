package networkutils

import (
	"slices"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
)

// TestPrivilegedHostKeepsForeignFwmarkRules: other software's fwmark rules
// at priority 1024 (another mark, another table, an interface match) are
// not ours and survive every reconcile, also one that changes our mark;
// our own rule of the old mark goes.
func TestPrivilegedHostKeepsForeignFwmarkRules(t *testing.T) {
	node := newNode(t)
	foreign := []string{
		"ipv4 1024: from all fwmark 0x4000/0x4000 lookup 100",
		"ipv4 1024: from all fwmark 0x200/0x200 iif eth0 lookup main",
	}
	sh(t, node, "ip", "rule", "add", "fwmark", "0x4000/0x4000", "lookup", "100", "priority", "1024")
	sh(t, node, "ip", "rule", "add", "fwmark", "0x200/0x200", "iif", "eth0", "lookup", "main", "priority", "1024")
	cfg := stateConfig(t, "iptables-nft", ConnmarkNFTables)

	check := func(step, ours string) {
		t.Helper()
		do(t, node, func() error {
			got := ruleStrings(t, netlink.FAMILY_V4, hostcontract.PriorityFwmark)
			for _, f := range foreign {
				if !slices.Contains(got, f) {
					t.Errorf("%s: foreign rule %q gone; priority-1024 rules: %q", step, f, got)
				}
			}
			if !slices.Contains(got, ours) || len(got) != len(foreign)+1 {
				t.Errorf("%s: priority-1024 rules %q, want the foreign ones and %q", step, got, ours)
			}
			return nil
		})
	}
	reconcileIn(t, node, cfg)
	check("first reconcile", "ipv4 1024: from all fwmark 0x80/0x80 lookup main")
	cfg.Connmark = 0x100
	reconcileIn(t, node, cfg)
	check("connmark changed", "ipv4 1024: from all fwmark 0x100/0x100 lookup main")
}
