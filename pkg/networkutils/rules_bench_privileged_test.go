package networkutils

import (
	"context"
	"net/netip"
	"testing"

	"github.com/containernetworking/plugins/pkg/ns"
	"github.com/vishvananda/netlink"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
)

// BenchmarkPrivilegedRestorePodRules restores the rules of 110 pods (a
// node at its max pods, 220 pod rules in place) as ipamd's start does:
// one call for all ("batch", one listing), against one call per pod (a
// listing each, as before).
func BenchmarkPrivilegedRestorePodRules(b *testing.B) {
	node := testutil.NewNS(b)
	n := New(nil)
	ctx := context.Background()
	var pods []PodRule
	for i := range 110 {
		pods = append(pods, PodRule{IP: netip.AddrFrom4([4]byte{10, 0, 1, byte(10 + i)}), Table: 2 + i%3})
	}
	in := func(f func() error) {
		if err := node.Do(func(ns.NetNS) error { return f() }); err != nil {
			b.Fatal(err)
		}
	}
	in(func() error { return n.RestorePodRules(ctx, pods) })
	in(func() error {
		rs, err := netlink.RuleList(netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		pod := 0
		for _, r := range rs {
			if r.Priority == hostcontract.PriorityToPod || r.Priority == hostcontract.PriorityFromPod {
				pod++
			}
		}
		if pod != 220 {
			b.Fatalf("%d pod rules after the restore, want 220", pod)
		}
		return nil
	})
	b.Run("per-pod", func(b *testing.B) {
		for b.Loop() {
			in(func() error {
				for _, p := range pods {
					if err := n.RestorePodRules(ctx, []PodRule{p}); err != nil {
						return err
					}
				}
				return nil
			})
		}
	})
	b.Run("batch", func(b *testing.B) {
		for b.Loop() {
			in(func() error { return n.RestorePodRules(ctx, pods) })
		}
	})
}
