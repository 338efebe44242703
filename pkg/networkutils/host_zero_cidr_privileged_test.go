package networkutils

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
)

// TestPrivilegedServiceCIDRAll: AWS_EXTERNAL_SERVICE_CIDRS=0.0.0.0/0. The
// kernel keeps a /0 destination as none and reads it back so; the rule
// must still be recognised as the one wanted, or every restart of ipamd
// after the first adds it again, fails with EEXIST and never starts. When
// the CIDR leaves the configuration the rule goes.
func TestPrivilegedServiceCIDRAll(t *testing.T) {
	node := newNode(t)
	cfg := stateConfig(t, "iptables-nft", ConnmarkNFTables)
	cfg.ExternalServiceCIDRs = prefixes("0.0.0.0/0", "172.20.0.0/16")
	reconcileIn(t, node, cfg)
	if res := reconcileIn(t, node, cfg); len(res.Changes) != 0 {
		t.Errorf("second reconcile changed: %q", res.Changes)
	}
	rules := func() []string {
		var out []string
		do(t, node, func() error {
			out = ruleStrings(t, netlink.FAMILY_V4, hostcontract.PriorityExternalService)
			return nil
		})
		return out
	}
	if diff := cmp.Diff([]string{"ipv4 1535: from all lookup main", "ipv4 1535: from all to 172.20.0.0/16 lookup main"}, rules()); diff != "" {
		t.Errorf("rules at 1535 (-want +got):\n%s", diff)
	}
	cfg.ExternalServiceCIDRs = prefixes("172.20.0.0/16")
	reconcileIn(t, node, cfg)
	if diff := cmp.Diff([]string{"ipv4 1535: from all to 172.20.0.0/16 lookup main"}, rules()); diff != "" {
		t.Errorf("rules at 1535 after 0.0.0.0/0 left the configuration (-want +got):\n%s", diff)
	}
}
