package networkutils

import (
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedOtherFlavourLeftovers: a node whose SNAT and connmark rules
// were written with iptables-legacy (upstream's image picks legacy on
// legacy hosts; ours always runs iptables-nft) restarts with external SNAT.
// The legacy rules are in the kernel's other iptables and would go on
// SNATing every pod: they must go, and the pod must leave with its own
// address.
func TestPrivilegedOtherFlavourLeftovers(t *testing.T) {
	testutil.Privileged(t)
	h := newHostTopology(t, "iptables-legacy")
	h.reconcile(t, h.cfg)
	h.expectSeen(t, inetServer, nodeIP)

	ext := h.cfg
	ext.IPTablesPath, ext.ExternalSNAT = "iptables-nft", true
	res := h.reconcile(t, ext)
	h.expectSeen(t, inetServer, podIP)
	for _, bin := range []string{"iptables-legacy-save", "ip6tables-legacy-save"} {
		if out := sh(t, h.node, bin); strings.Contains(out, "AWS") {
			t.Errorf("%s after the switch to iptables-nft (changes %q):\n%s", bin, res.Changes, out)
		}
	}
	if res := h.reconcile(t, ext); len(res.Changes) != 0 {
		t.Errorf("second reconcile changed: %q", res.Changes)
	}

	// And back: the nft flavour's rules go when legacy is in use.
	h.reconcile(t, h.cfg)
	h.expectSeen(t, inetServer, nodeIP)
	for _, bin := range []string{"iptables-nft-save", "ip6tables-nft-save"} {
		if out := sh(t, h.node, bin); strings.Contains(out, "AWS") {
			t.Errorf("%s after the switch back to iptables-legacy:\n%s", bin, out)
		}
	}
}
