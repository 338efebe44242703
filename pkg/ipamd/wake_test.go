package ipamd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestWaitingAddWakesWhenCooldownEnds: on a full pool that cannot grow
// (no pool manager runs here), an ADD waits for the one cooling address
// and gets it the moment its cooldown ends, not on the next tick of a
// one-second poll.
func TestWaitingAddWakesWhenCooldownEnds(t *testing.T) {
	const cooldown = 1200 * time.Millisecond
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.IPCooldown = cooldown }})
	h.settle()
	ctx := context.Background()
	free := h.pool(0).Stats.AvailableIPs
	if free == 0 {
		t.Fatal("setup: no warm address")
	}
	for i := range free {
		if _, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: fmt.Sprint("full-", i), IfName: "eth0"}); err != nil {
			t.Fatal(err)
		}
	}
	d, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "full-0", IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	usable, ok := h.coolingEnd()
	if !ok {
		t.Fatal("the released address is not cooling")
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := h.srv.AddNetwork(actx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "waiter", IfName: "eth0"})
	got := time.Now()
	if err != nil {
		t.Fatalf("waiting ADD: %v", err)
	}
	if r.IpAllocationMetadata[0].Ipv4Addr != d.IpAllocationMetadata[0].Ipv4Addr {
		t.Errorf("waiting ADD got %s, want the cooled %s", r.IpAllocationMetadata[0].Ipv4Addr, d.IpAllocationMetadata[0].Ipv4Addr)
	}
	if got.Before(usable) {
		t.Errorf("ADD answered %s before the cooldown ended", usable.Sub(got))
	}
	// A one-second poll would answer up to a second late; a timer on the
	// expiry answers at once (the bound leaves room for a loaded machine).
	if late := got.Sub(usable); late > 400*time.Millisecond {
		t.Errorf("ADD answered %s after the cooldown ended", late)
	}
}
