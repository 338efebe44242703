package ipamd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestMultiNICMaxPodsPerCard: max pods caps pods, and a pod holds at most
// one address per card, so each card may hold max pods addresses for pods
// and no more. With max pods 5 and a warm target that would ask for more,
// 5 multi-NIC pods each get an address on both cards (a node-wide count
// of addresses would refuse the third), and no card holds more than 5
// addresses for pods once the pool settles; a single-NIC pod added while
// 4 multi-NIC pods run is served too.
func TestMultiNICMaxPodsPerCard(t *testing.T) {
	const maxPods = 5
	h := newHarness(t, harnessOpts{instanceType: "c6in.32xlarge", cfg: func(c *config.Config) {
		c.EnableMultiNIC, c.WarmIPTarget, c.IPCooldown, c.MaxPodsOverride = true, 4, 0, maxPods
	}})
	h.settle()
	stop := startPoolManager(h)
	defer stop()
	ctx := context.Background()
	add := func(id string, multi bool) {
		t.Helper()
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		r, err := h.srv.AddNetwork(actx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: id, IfName: "eth0",
			K8SPodNamespace: "default", K8SPodName: id, RequiresMultiNicAttachment: multi})
		want := 1
		if multi {
			want = 2
		}
		if err != nil || !r.Success || len(r.IpAllocationMetadata) != want {
			t.Fatalf("ADD %s (multi-NIC %v) with card 0 %+v, card 1 %+v: %v %v", id, multi, h.pool(0).Stats, h.pool(1).Stats, r, err)
		}
	}
	check := func(when string) {
		t.Helper()
		for card := range 2 {
			if st := h.pool(card).Stats; st.TotalIPs-st.CoolingIPs > maxPods {
				t.Errorf("%s: card %d holds %d addresses for pods (%+v), beyond max pods %d", when, card, st.TotalIPs-st.CoolingIPs, st, maxPods)
			}
		}
	}
	for i := range maxPods - 1 {
		add(fmt.Sprint("multi-", i), true)
	}
	add("single-0", false)
	if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "single-0", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	add(fmt.Sprint("multi-", maxPods-1), true)
	stop()
	h.settle()
	check("settled with max pods multi-NIC pods")
	for card := range 2 {
		if n := h.pool(card).Stats.Pods; n != maxPods {
			t.Errorf("card %d serves %d pods, want %d", card, n, maxPods)
		}
	}
	h.checkConsistent()
}
