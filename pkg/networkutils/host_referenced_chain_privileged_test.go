package networkutils

import (
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedHostStaleChainStillReferenced: a node leaves the iptables
// connmark backend while another program's rule in a chain we do not
// manage (nat OUTPUT) still jumps to AWS-CONNMARK-CHAIN-0. The kernel
// will not delete a referenced chain; that must not fail this and every
// later reconcile (and so ipamd's start) for good: the chain is emptied,
// the foreign rule left alone, and the reconcile succeeds.
func TestPrivilegedHostStaleChainStillReferenced(t *testing.T) {
	testutil.Privileged(t)
	for _, ipt := range []string{"iptables-nft", "iptables-legacy"} {
		t.Run(ipt, func(t *testing.T) {
			node := newNode(t)
			from, to := stateConfig(t, ipt, ConnmarkIPTables), stateConfig(t, ipt, ConnmarkIPTables)
			to.ExternalSNAT = true
			reconcileIn(t, node, from)
			foreign := []string{"-t", "nat", "-A", "OUTPUT", "-d", "192.0.2.7/32", "-j", connmarkChain}
			sh(t, node, ipt, foreign...)

			reconcileIn(t, node, to) // fails the test on error
			if res := reconcileIn(t, node, to); len(res.Changes) != 0 {
				t.Errorf("second reconcile changed: %q", res.Changes)
			}
			out := sh(t, node, ipt, "-t", "nat", "-S")
			if !strings.Contains(out, "-A OUTPUT -d 192.0.2.7/32 -j "+connmarkChain) {
				t.Errorf("the foreign jump is gone:\n%s", out)
			}
			if strings.Contains(out, "-A "+connmarkChain+" ") {
				t.Errorf("the stale chain still has rules:\n%s", out)
			}
		})
	}
}
