package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedDelKeepsTheOtherAttachmentsJump: one container wired
// twice (eth0 in one namespace, net1 in another: one egress attachment
// per namespace and family) shares one SNAT chain, with a POSTROUTING jump
// from each attachment's address. The DEL of eth0 must leave net1's jump
// and the chain: net1's egress traffic is still SNATed to the node.
func TestPrivilegedDelKeepsTheOtherAttachmentsJump(t *testing.T) {
	tp := newTopo(t)
	entry := withPrevResult(t, tp.egressEntry(false, ""))
	natBefore := tp.nat(t, false)
	a, b := testutil.NewNS(t), testutil.NewNS(t)
	const id = "ctr-two"
	if e := execIf(t, tp, "ADD", id, a.Path(), "eth0", entry); e != nil {
		t.Fatalf("ADD eth0: %v", e)
	}
	heldA := storeEntries(t, tp.storeDir(false))
	if e := execIf(t, tp, "ADD", id, b.Path(), "net1", entry); e != nil {
		t.Fatalf("ADD net1: %v", e)
	}
	var addrB string
	for _, h := range storeEntries(t, tp.storeDir(false)) {
		if !slices.Contains(heldA, h) {
			addrB = h
		}
	}
	chain := egress.ChainName(egress.V4, "aws-cni", id)
	if e := execIf(t, tp, "DEL", id, a.Path(), "eth0", entry); e != nil {
		t.Fatalf("DEL eth0: %v", e)
	}
	nat := only(tp.nat(t, false), chain)
	if !slices.Contains(nat, "-N "+chain) || !slices.ContainsFunc(nat, func(l string) bool {
		return strings.HasPrefix(l, "-A POSTROUTING -s "+addrB+"/32 ") && strings.HasSuffix(l, "-j "+chain)
	}) {
		t.Errorf("nat after the DEL of eth0 lost net1's (%s) SNAT:\n%s", addrB, strings.Join(nat, "\n"))
	}
	if e := execIf(t, tp, "DEL", id, b.Path(), "net1", entry); e != nil {
		t.Errorf("DEL net1: %v", e)
	}
	wantLines(t, "nat after both DELs", tp.nat(t, false), natBefore)
}
