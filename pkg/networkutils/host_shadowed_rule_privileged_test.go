package networkutils

import (
	"slices"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
)

// TestPrivilegedHostRuleBesideAMoreSpecificOne: the kernel refuses a new
// ip rule without source or destination when a rule differing only by
// having one is already there (it compares an absent selector as a
// wildcard). So AWS_EXTERNAL_SERVICE_CIDRS growing from 172.20.0.0/16 to
// include 0.0.0.0/0 (a rule with no destination), or another program's
// `from 192.0.2.0/24 fwmark 0x80/0x80 lookup main` at 1024, must not keep
// our rule out, nor fail every reconcile (and ipamd's start) for good.
func TestPrivilegedHostRuleBesideAMoreSpecificOne(t *testing.T) {
	node := newNode(t)
	sh(t, node, "ip", "rule", "add", "from", "192.0.2.0/24", "fwmark", "0x80/0x80", "lookup", "main", "priority", "1024")
	cfg := stateConfig(t, "iptables-nft", ConnmarkNFTables)
	cfg.ExternalServiceCIDRs = prefixes("172.20.0.0/16")
	reconcileIn(t, node, cfg)
	cfg.ExternalServiceCIDRs = prefixes("172.20.0.0/16", "0.0.0.0/0")
	reconcileIn(t, node, cfg)
	do(t, node, func() error {
		got := ruleStrings(t, netlink.FAMILY_V4, hostcontract.PriorityFwmark, hostcontract.PriorityExternalService)
		slices.Sort(got)
		want := []string{
			"ipv4 1024: from 192.0.2.0/24 fwmark 0x80/0x80 lookup main",
			"ipv4 1024: from all fwmark 0x80/0x80 lookup main",
			"ipv4 1535: from all lookup main",
			"ipv4 1535: from all to 172.20.0.0/16 lookup main",
		}
		if !slices.Equal(got, want) {
			t.Errorf("rules at 1024 and 1535:\n got %q\nwant %q", got, want)
		}
		return nil
	})
	if res := reconcileIn(t, node, cfg); len(res.Changes) != 0 {
		t.Errorf("not converged: %q", res.Changes)
	}
}
