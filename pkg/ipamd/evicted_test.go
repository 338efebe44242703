package ipamd

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// evictedHarness is goneENIHarness with one more pod, "victim", given the
// warm address of the second ENI; that ENI is then detached and deleted
// behind ipamd's back and a reconcile drops it. It returns the victim's
// address. No DEL is sent for the victim: its sandbox still runs.
func evictedHarness(t *testing.T) (*harness, netip.Addr) {
	t.Helper()
	h, second := goneENIHarness(t, time.Second)
	ctx := context.Background()
	reply, err := h.srv.AddNetwork(ctx, addReq("victim"))
	if err != nil {
		t.Fatal(err)
	}
	victim := netip.MustParseAddr(reply.IpAllocationMetadata[0].Ipv4Addr)
	if owner := simAddrs(h)[victim]; owner != second {
		t.Fatalf("victim got %s on %q, want an address of the second ENI %s", victim, owner, second)
	}
	enis, _, err := h.ec2.DescribeENIs(ctx, []string{second})
	if err != nil || len(enis) != 1 || enis[0].Attachment == nil {
		t.Fatalf("describing %s: %v %+v", second, err, enis)
	}
	if err := h.ec2.FreeENI(ctx, second, enis[0].Attachment.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a reconcile dropping the deleted ENI", func() bool {
		if err := h.n.reconciler.reconcile(ctx); err != nil {
			t.Logf("reconcile: %v", err)
		}
		for _, e := range h.pool(0).ENIs {
			if e.ID == second {
				return false
			}
		}
		return true
	})
	return h, victim
}

// TestEvictedAddressNotReissuedWhileItsPodLives: a pod's ENI is deleted
// behind ipamd's back; the reconcile drops the ENI, but the pod has had
// no DEL and still holds the address in its netns. EC2 then hands the
// address out again (to the ENI ipamd grows next). No new pod may get
// it. Before, the store forgot the evicted pod and the next ADD on the
// new ENI got its address: two pods, one IP.
func TestEvictedAddressNotReissuedWhileItsPodLives(t *testing.T) {
	h, victim := evictedHarness(t)
	ctx := context.Background()
	offered := false
	for i := 0; i < 12 && !offered; i++ {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		reply, err := h.srv.AddNetwork(actx, addReq(fmt.Sprint("new-", i)))
		cancel()
		if err != nil {
			t.Fatalf("ADD new-%d: %v", i, err)
		}
		if got := netip.MustParseAddr(reply.IpAllocationMetadata[0].Ipv4Addr); got == victim {
			t.Fatalf("ADD new-%d got %s, the address of the evicted pod that had no DEL", i, got)
		}
		_, offered = simAddrs(h)[victim]
	}
	if !offered {
		t.Fatalf("EC2 never listed %s on an ENI again: the test proves nothing", victim)
	}
	// One more ADD after the address is back on an ENI of the node.
	reply, err := h.srv.AddNetwork(ctx, addReq("last"))
	if err != nil {
		t.Fatal(err)
	}
	if got := netip.MustParseAddr(reply.IpAllocationMetadata[0].Ipv4Addr); got == victim {
		t.Fatalf("ADD last got %s, the address of the evicted pod that had no DEL", got)
	}
}
