package networkutils

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedHostKeepsIPTablesMarkingUntilNFTablesWorks: a node moves
// from the iptables connmark backend to nftables, but table ip aws-cni
// cannot be programmed (here another process owns a table of that name,
// so the kernel refuses our changes). The reconcile fails, and pod
// connections must stay marked by iptables meanwhile; once nftables can
// be programmed, the next reconcile moves the marking there.
func TestPrivilegedHostKeepsIPTablesMarkingUntilNFTablesWorks(t *testing.T) {
	testutil.Privileged(t)
	node := newNode(t)
	cfgs := transitionConfigs(t)
	reconcileIn(t, node, cfgs["iptables-connmark"])
	marked := pathInvariants[1]
	if marked.name != "new pod connections get the connmark" {
		t.Fatalf("pathInvariants[1] is %q", marked.name)
	}

	// `nft -i` owns the table for as long as its stdin stays open.
	owner := exec.Command("nft", "-i")
	stdin, err := owner.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	do(t, node, owner.Start)
	t.Cleanup(func() { _ = stdin.Close(); _ = owner.Process.Kill(); _ = owner.Wait() })
	if _, err := io.WriteString(stdin, "add table ip "+nftTable+" { flags owner; }\n"); err != nil {
		t.Fatal(err)
	}
	if err := testutil.Eventually(context.Background(), 10*time.Second, func() error {
		if !strings.Contains(sh(t, node, "nft", "list", "tables"), "table ip "+nftTable) {
			return errors.New("the owned table is not there yet")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var rerr error
	do(t, node, func() error {
		_, rerr = New(nil).ReconcileHost(context.Background(), cfgs["base"])
		return nil
	})
	if rerr == nil || !strings.Contains(rerr.Error(), "nft") {
		t.Fatalf("reconcile with table ip %s owned by another process: %v, want an nftables error", nftTable, rerr)
	}
	if v := parseRuleset(sh(t, node, "nft", "-a", "list", "ruleset")); !marked.holds(v) {
		t.Errorf("after the failed move to nftables nothing marks pod connections:\n%s", sh(t, node, "nft", "list", "ruleset"))
	}

	// The owner goes, and with it its table.
	_ = stdin.Close()
	_ = owner.Wait()
	reconcileIn(t, node, cfgs["base"])
	v := parseRuleset(sh(t, node, "nft", "-a", "list", "ruleset"))
	if !v.has("ip aws-cni/snat-mark", "ct mark set ct mark |") || len(v["ip nat/"+connmarkChain]) != 0 || v.has("ip nat/PREROUTING", "jump "+connmarkChain) {
		t.Errorf("after nftables works again the marking is not (only) there:\n%s", sh(t, node, "nft", "list", "ruleset"))
	}
}
