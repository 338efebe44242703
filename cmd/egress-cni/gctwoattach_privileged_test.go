package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
)

// TestPrivilegedGCKeepsTheValidAttachmentOfAContainer: one container
// wired twice (eth0, net1), GC listing only net1 as valid. net1 keeps its
// address, veth, the container's chain and its jump; eth0's address,
// veth and jump go: a jump kept from the address released would SNAT the
// next pod given it through this container's chain.
func TestPrivilegedGCKeepsTheValidAttachmentOfAContainer(t *testing.T) {
	tp := newTopo(t)
	const id = "ctr-two"
	w := addTwoAttachments(t, tp, id)
	chain := egress.ChainName(egress.V4, "aws-cni", id)
	entry := tp.egressEntry(false, "")
	if out, err := runGC(tp, entry, "aws-cni", types.GCAttachment{ContainerID: id, IfName: "net1"}); err != nil {
		t.Fatalf("GC: %v: %s", err, out)
	}
	held := storeEntries(t, tp.storeDir(false))
	nat := only(tp.nat(t, false), chain)
	node := snapshot(t, tp.node.Path())
	hasVeth := func(ifname string) bool {
		veth := egress.HostVethName(id, ifname)
		return slices.ContainsFunc(node, func(l string) bool { return strings.HasPrefix(l, "link "+veth+" ") })
	}
	if !slices.Contains(held, w.addrB) || !hasVeth("net1") || !slices.Contains(nat, "-N "+chain) || !hasJump(nat, w.addrB, chain) {
		t.Errorf("GC with net1 valid lost some of net1's wiring (address %s): held %v, net1 veth %v, nat:\n%s",
			w.addrB, held, hasVeth("net1"), strings.Join(nat, "\n"))
	}
	if slices.Contains(held, w.addrA) || hasVeth("eth0") || hasJump(nat, w.addrA, chain) {
		t.Errorf("GC with eth0 invalid left some of eth0's wiring (address %s): held %v, eth0 veth %v, nat:\n%s",
			w.addrA, held, hasVeth("eth0"), strings.Join(nat, "\n"))
	}
}
