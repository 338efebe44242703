package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// twoAttach is one container wired twice in network aws-cni: eth0 in
// namespace a, net1 in namespace b, each holding an egress address.
type twoAttach struct {
	id, entry    string
	a, b         ns.NetNS
	addrA, addrB string // the addresses eth0 and net1 hold
}

func addTwoAttachments(t *testing.T, tp *topo, id string) twoAttach {
	t.Helper()
	w := twoAttach{id: id, entry: withPrevResult(t, tp.egressEntry(false, "")), a: testutil.NewNS(t), b: testutil.NewNS(t)}
	if e := execIf(t, tp, "ADD", id, w.a.Path(), "eth0", w.entry); e != nil {
		t.Fatalf("ADD eth0: %v", e)
	}
	heldA := storeEntries(t, tp.storeDir(false))
	if len(heldA) != 1 {
		t.Fatalf("after ADD eth0 the store holds %v, want one address", heldA)
	}
	w.addrA = heldA[0]
	if e := execIf(t, tp, "ADD", id, w.b.Path(), "net1", w.entry); e != nil {
		t.Fatalf("ADD net1: %v", e)
	}
	for _, h := range storeEntries(t, tp.storeDir(false)) {
		if h != w.addrA {
			w.addrB = h
		}
	}
	return w
}

// hasJump reports whether nat has a POSTROUTING jump from addr to chain.
func hasJump(nat []string, addr, chain string) bool {
	return slices.ContainsFunc(nat, func(l string) bool {
		return strings.HasPrefix(l, "-A POSTROUTING -s "+addr+"/32 ") && strings.HasSuffix(l, "-j "+chain)
	})
}

// TestPrivilegedDelKeepsTheOtherAttachmentsJump: one container wired
// twice (eth0 in one namespace, net1 in another: one egress attachment
// per namespace and family) shares one SNAT chain, with a POSTROUTING jump
// from each attachment's address. The DEL of eth0 must leave net1's jump
// and the chain: net1's egress traffic is still SNATed to the node.
func TestPrivilegedDelKeepsTheOtherAttachmentsJump(t *testing.T) {
	tp := newTopo(t)
	natBefore := tp.nat(t, false)
	const id = "ctr-two"
	w := addTwoAttachments(t, tp, id)
	chain := egress.ChainName(egress.V4, "aws-cni", id)
	if e := execIf(t, tp, "DEL", id, w.a.Path(), "eth0", w.entry); e != nil {
		t.Fatalf("DEL eth0: %v", e)
	}
	nat := only(tp.nat(t, false), chain)
	if !slices.Contains(nat, "-N "+chain) || !hasJump(nat, w.addrB, chain) {
		t.Errorf("nat after the DEL of eth0 lost net1's (%s) SNAT:\n%s", w.addrB, strings.Join(nat, "\n"))
	}
	if e := execIf(t, tp, "DEL", id, w.b.Path(), "net1", w.entry); e != nil {
		t.Errorf("DEL net1: %v", e)
	}
	wantLines(t, "nat after both DELs", tp.nat(t, false), natBefore)
}
