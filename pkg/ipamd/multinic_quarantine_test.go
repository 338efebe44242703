package ipamd

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/metrics"
)

// TestQuarantinedAddressOfMultiNICPodIsNotReissuedOnItsOtherCard: a
// multi-NIC pod holds 10.0.0.10 on card 0 and 10.0.1.10 on card 1 (one
// key, one entry per card). EC2 takes 10.0.0.10 away (quarantined on card
// 0) and then lists it on card 1's ENI. Card 1 cannot take the entry over
// (it holds the pod's key already), so it must not take the address
// either until the pod's DEL. Before, card 1 added it free and gave it to
// the next pod: two pods, one IP.
func TestQuarantinedAddressOfMultiNICPodIsNotReissuedOnItsOtherCard(t *testing.T) {
	cs, _ := twoCardStores(t, 30*time.Second)
	card0, card1 := cs.all()[0].store, cs.all()[1].store
	evicted, other := netip.MustParseAddr("10.0.0.10"), netip.MustParseAddr("10.0.1.10")
	if err := card0.AddCIDR("eni-card0", netip.PrefixFrom(evicted, 32)); err != nil {
		t.Fatal(err)
	}
	if err := card1.AddCIDR("eni-card1", netip.PrefixFrom(other, 32)); err != nil {
		t.Fatal(err)
	}
	h := &handout{cards: cs}
	meta := datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "multi"}
	asgs, err := h.assign(cardKey("multi"), meta, true)
	if err != nil || len(asgs) != 2 || asgs[0].Addr != evicted || asgs[1].Addr != other {
		t.Fatalf("multi-NIC ADD: %+v %v", asgs, err)
	}
	if ev, err := card0.RemoveCIDR("eni-card0", netip.PrefixFrom(evicted, 32), true); err != nil || len(ev) != 1 {
		t.Fatalf("card 0's reconcile: %+v %v", ev, err)
	}
	if err := card1.AddCIDR("eni-card1", netip.PrefixFrom(evicted, 32)); err != nil && !errors.Is(err, datastore.ErrDuplicateCIDR) {
		t.Fatal(err)
	}
	if a, err := card1.Assign(cardKey("new"), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "new"}); err == nil {
		t.Fatalf("a new pod on card 1 got %s; the multi-NIC pod quarantined on card 0 still holds %s", a.Addr, evicted)
	} else if !errors.Is(err, datastore.ErrNoAvailableAddress) {
		t.Fatal(err)
	}
	if st := card0.Stats(); st.Pending != 1 {
		t.Fatalf("card 0: %+v, want the pod's evicted address still quarantined there", st)
	}
	released, err := h.release(cardKey("multi"))
	if err != nil || len(released) != 2 {
		t.Fatalf("DEL of the multi-NIC pod: %+v %v, want both its addresses", released, err)
	}
	// Released, the address is card 1's, cooling like any other.
	if err := card1.AddCIDR("eni-card1", netip.PrefixFrom(evicted, 32)); err != nil {
		t.Fatalf("card 1 adding the address after the DEL: %v", err)
	}
	if a, err := card1.Assign(cardKey("new"), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "new"}); err == nil {
		t.Fatalf("a new pod on card 1 got %s within the cooldown of the multi-NIC pod's DEL", a.Addr)
	}
	if st := card0.Stats(); st.Pending != 0 {
		t.Fatalf("card 0 after the move: %+v, want nothing quarantined", st)
	}
}

// TestRestoredQuarantinedAddressOfMultiNICPodIsNotReissuedOnItsOtherCard:
// the same as above across a restart: while ipamd was down, EC2 moved the
// multi-NIC pod's quarantined card-0 address to card 1's ENI, which holds
// the pod's card-1 address. At the start card 1 adds the address before
// any card restores its checkpoint, so it is free there. Before, card 1
// gave it to the next pod; now card 1 drops it until the pod's DEL.
func TestRestoredQuarantinedAddressOfMultiNICPodIsNotReissuedOnItsOtherCard(t *testing.T) {
	cs, ckpts := twoCardStores(t, 30*time.Second)
	card0, card1 := cs.all()[0].store, cs.all()[1].store
	evicted, other := netip.MustParseAddr("10.0.0.10"), netip.MustParseAddr("10.0.1.10")
	for _, a := range []netip.Addr{other, evicted} {
		if err := card1.AddCIDR("eni-card1", netip.PrefixFrom(a, 32)); err != nil {
			t.Fatal(err)
		}
	}
	meta := datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "multi", InterfacesCount: 2}
	for card, a := range []netip.Addr{evicted, other} {
		if err := ckpts[card].Write(datastore.File{Version: datastore.CheckpointVersion,
			Allocations: []datastore.Allocation{{Key: cardKey("multi"), Addr: a, Meta: meta}}}); err != nil {
			t.Fatal(err)
		}
	}
	r := &restorer{cards: cs, host: newFakeHost(), log: slog.Default(), dropped: metrics.New("test").RestoreDropped}
	if err := r.restoreAll(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if a, err := card1.Assign(cardKey("new"), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "new"}); err == nil {
		t.Fatalf("a new pod on card 1 got %s; the multi-NIC pod quarantined on card 0 still holds %s", a.Addr, evicted)
	} else if !errors.Is(err, datastore.ErrNoAvailableAddress) {
		t.Fatal(err)
	}
	if a, ok := card1.Lookup(cardKey("multi")); !ok || a.Addr != other {
		t.Fatalf("the pod on card 1: %+v %v, want %s", a, ok, other)
	}
	if st := card0.Stats(); st.Pending != 1 {
		t.Fatalf("card 0: %+v, want the pod's evicted address quarantined there", st)
	}
	h := &handout{cards: cs}
	if released, err := h.release(cardKey("multi")); err != nil || len(released) != 2 {
		t.Fatalf("DEL of the multi-NIC pod: %+v %v, want both its addresses", released, err)
	}
	// The reconcile then adds the address to card 1, cooling.
	if err := card1.AddCIDR("eni-card1", netip.PrefixFrom(evicted, 32)); err != nil {
		t.Fatalf("card 1 adding the address after the DEL: %v", err)
	}
	if st := card1.Stats(); st.TotalIPs != 2 || st.CoolingIPs != 2 {
		t.Fatalf("card 1 after the DEL: %+v, want both of the pod's addresses cooling there", st)
	}
}
