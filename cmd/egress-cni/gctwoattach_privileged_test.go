package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/vpc-cni/vpc-cni/pkg/egress"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
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

// TestPrivilegedGCKeepsALegacyHolderOfAValidContainer: an address whose
// store file names only the container (host-local versions that recorded
// no interface) cannot be told apart from the valid attachment's: GC of a
// container with a valid attachment keeps it and its jump.
func TestPrivilegedGCKeepsALegacyHolderOfAValidContainer(t *testing.T) {
	tp := newTopo(t)
	const id = "ctr-legacy"
	entry := withPrevResult(t, tp.egressEntry(false, ""))
	pod := testutil.NewNS(t)
	if e := execIf(t, tp, "ADD", id, pod.Path(), "eth0", entry); e != nil {
		t.Fatalf("ADD: %v", e)
	}
	held := storeEntries(t, tp.storeDir(false))
	if len(held) != 1 {
		t.Fatalf("after ADD the store holds %v, want one address", held)
	}
	if err := os.WriteFile(filepath.Join(tp.storeDir(false), "aws-cni", held[0]), []byte(id), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := runGC(tp, tp.egressEntry(false, ""), "aws-cni", onEth0(id)...); err != nil {
		t.Fatalf("GC: %v: %s", err, out)
	}
	chain := egress.ChainName(egress.V4, "aws-cni", id)
	nat := only(tp.nat(t, false), chain)
	if got := storeEntries(t, tp.storeDir(false)); !slices.Contains(got, held[0]) || !hasJump(nat, held[0], chain) {
		t.Errorf("GC with %s/eth0 valid dropped its legacy-recorded address %s: held %v, nat:\n%s", id, held[0], got, strings.Join(nat, "\n"))
	}
}
