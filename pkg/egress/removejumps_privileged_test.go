package egress

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"

	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// TestPrivilegedRemoveJumpsKeepsAnotherAttachmentsJump: two attachments
// of one container jump to its one chain. Removing the first's jump keeps
// the chain and the second's jump; removing the second's removes the
// chain, which nothing jumps to any more.
func TestPrivilegedRemoveJumpsKeepsAnotherAttachmentsJump(t *testing.T) {
	n := testutil.NewNS(t)
	a, b := netip.MustParseAddr("169.254.172.2"), netip.MustParseAddr("169.254.172.3")
	chain := ChainName(V4, "aws-cni", "ctr-two")
	err := n.Do(func(ns.NetNS) error {
		for _, ip := range []netip.Addr{a, b} {
			s := SNAT{Family: V4, Network: "aws-cni", ContainerID: "ctr-two", PodIP: ip.AsSlice(), NodeIP: net.ParseIP("192.0.2.10"), Mode: SNATRandomFully}
			if err := s.Apply(); err != nil {
				return err
			}
		}
		if err := RemoveJumps(V4, "aws-cni", "ctr-two", []netip.Addr{a}); err != nil {
			return err
		}
		nat, err := listNAT(V4)
		if err != nil {
			return err
		}
		if strings.Contains(nat, "-s 169.254.172.2/32") || !strings.Contains(nat, "-s 169.254.172.3/32") || !strings.Contains(nat, "-N "+chain) {
			t.Errorf("nat after removing the first attachment's jump, want the second's jump and the chain:\n%s", nat)
		}
		if err := RemoveJumps(V4, "aws-cni", "ctr-two", []netip.Addr{b}); err != nil {
			return err
		}
		if nat, err = listNAT(V4); err != nil {
			return err
		}
		if strings.Contains(nat, chain) {
			t.Errorf("nat after removing the last jump still has %s:\n%s", chain, nat)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
