package ipamd

import (
	"context"
	"testing"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestPrefixDelegationToggledAcrossRestartKeepsPods: pods on secondary
// /32s keep their addresses when ipamd restarts with
// ENABLE_PREFIX_DELEGATION=true (and pods on /28s when it restarts with it
// off), as upstream keeps them: the restart neither drops nor releases an
// address a pod holds, new pods get addresses of the new mode, and once
// the old pods are gone their old-mode CIDRs go back to EC2.
func TestPrefixDelegationToggledAcrossRestartKeepsPods(t *testing.T) {
	for _, tc := range []struct {
		name   string
		before func(*config.Config)
		after  func(*config.Config)
		newPD  bool
	}{
		{"secondary to prefixes", func(c *config.Config) { c.WarmIPTarget = 2 },
			func(c *config.Config) { c.EnablePrefixDelegation, c.WarmPrefixTarget, c.WarmIPTarget = true, 1, 0 }, true},
		{"prefixes to secondary", func(c *config.Config) { c.EnablePrefixDelegation, c.WarmPrefixTarget, c.WarmIPTarget = true, 1, 0 },
			func(c *config.Config) { c.EnablePrefixDelegation, c.WarmPrefixTarget, c.WarmIPTarget = false, 0, 2 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.IPCooldown = 0; tc.before(c) }})
			ctx := context.Background()
			pods := map[int]bool{}
			h.setPods(pods, 12)
			held := map[int]string{}
			for i := range pods {
				a, ok := h.lookup(0, podKey(i))
				if !ok {
					t.Fatalf("pod %d holds nothing before the restart", i)
				}
				held[i] = a.Addr.String()
			}

			tc.after(&h.cfg)
			h.connect(fastTimes) // restart with the other mode
			if err := h.n.Init(ctx); err != nil {
				t.Fatal(err)
			}
			for range 5 {
				h.n.PoolCycle(ctx)
			}
			for i, addr := range held {
				a, ok := h.lookup(0, podKey(i))
				if !ok || a.Addr.String() != addr {
					t.Errorf("pod %d: held %s before the restart, %v (%v) after", i, addr, a.Addr, ok)
				}
			}
			h.checkConsistent()

			r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "new", IfName: "eth0"})
			if err != nil || !r.Success {
				t.Fatalf("new pod after the restart: %v %v", r, err)
			}
			for i := range pods {
				if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: podKey(i).ContainerID, IfName: "eth0"}); err != nil {
					t.Fatalf("DEL of pod %d after the restart: %v", i, err)
				}
			}
			h.settle()
			got := h.simCounts()
			if tc.newPD && got.IPs != 0 {
				t.Errorf("after the old pods left: %+v, want their secondary addresses released", got)
			}
			if !tc.newPD && got.Prefixes != 0 {
				t.Errorf("after the old pods left: %+v, want their prefixes released", got)
			}
			h.checkConsistent()
		})
	}
}
