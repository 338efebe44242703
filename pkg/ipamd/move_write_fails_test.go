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

// TestQuarantinedMoveWhoseWriteFailsIsReleasedOnce: card 0 holds
// "victim" quarantined at 10.0.0.10 when EC2 lists the address on card
// 1's ENI, and card 1's checkpoint write of the move fails. Both cards
// then keep the pod until its DEL (card 0 pending, card 1 on its ENI): no
// new pod gets the address meanwhile, and the DEL releases it once, as
// card 1 holds it (its ENI's table), so the reply names the address once,
// for the pod's one interface. Before, the DEL released it on both cards
// and the reply named it twice, the pending copy (main table) first: the
// plugin took that for eth0 and the second for an eth1 the pod never had.
func TestQuarantinedMoveWhoseWriteFailsIsReleasedOnce(t *testing.T) {
	cs, ckpts := twoCardStores(t, 30*time.Second)
	card0, card1 := cs.all()[0].store, cs.all()[1].store
	addr, p := quarantineVictimOnCard0(t, card0)
	moveWithFailingWrite(t, ckpts, card1, p)
	ckpts[1].SetErr(nil)
	if st := card0.Stats(); st.Pending != 1 {
		t.Fatalf("card 0 after the failed move: %+v, want the victim still kept there", st)
	}
	if a, ok := card1.Lookup(cardKey("victim")); !ok || a.Addr != addr || a.ENIID != "eni-card1" {
		t.Fatalf("victim on card 1: %+v %v", a, ok)
	}
	if a, err := card1.Assign(cardKey("new"), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "new"}); err == nil {
		t.Fatalf("a new pod got %s, which the victim holds on both cards", a.Addr)
	}

	host := newFakeHost()
	h := &handout{cards: cs, host: host, log: slog.Default(), observe: &observer{m: metrics.New("test"), cards: cs}}
	d := due{parent: context.Background(), at: time.Now().Add(5 * time.Second)}
	released, err := h.ReleasePod(&d, cardKey("victim"), "default", "victim")
	if err != nil {
		t.Fatal(err)
	}
	if len(released) != 1 || released[0].Addr != addr || released[0].ENIID != "eni-card1" || released[0].RouteTableID != 3 {
		t.Fatalf("DEL released %+v, want %s once, on eni-card1 (table 3)", released, addr)
	}
	for i, c := range []*datastore.Store{card0, card1} {
		if _, ok := c.Lookup(cardKey("victim")); ok {
			t.Errorf("card %d still holds the victim after its DEL", i)
		}
		if checkpointHolds(ckpts[i], addr) {
			t.Errorf("card %d's checkpoint still holds %s as an allocation after the DEL", i, addr)
		}
	}
	if st := card0.Stats(); st.Pending != 0 {
		t.Errorf("card 0 after the DEL: %+v, want nothing quarantined", st)
	}
	if a, err := card1.Assign(cardKey("new"), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "new"}); err == nil {
		t.Errorf("a new pod got %s within the cooldown of the victim's DEL", a.Addr)
	}
}

// quarantineVictimOnCard0 has card 0 hand 10.0.0.10 to "victim" and then
// lose it to a reconcile (EC2 no longer lists it there): the pod is kept
// quarantined on card 0.
func quarantineVictimOnCard0(t *testing.T, card0 *datastore.Store) (netip.Addr, netip.Prefix) {
	t.Helper()
	addr := netip.MustParseAddr("10.0.0.10")
	p := netip.PrefixFrom(addr, 32)
	if err := card0.AddCIDR("eni-card0", p); err != nil {
		t.Fatal(err)
	}
	if a, err := card0.Assign(cardKey("victim"), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "victim"}); err != nil || a.Addr != addr {
		t.Fatalf("victim: %+v %v", a, err)
	}
	if ev, err := card0.RemoveCIDR("eni-card0", p, true); err != nil || len(ev) != 1 {
		t.Fatalf("card 0's reconcile: %+v %v", ev, err)
	}
	return addr, p
}

// moveWithFailingWrite has card 1 take the address over from EC2's
// listing while its checkpoint write fails.
func moveWithFailingWrite(t *testing.T, ckpts [2]*datastore.MemCheckpointer, card1 *datastore.Store, p netip.Prefix) {
	t.Helper()
	ckpts[1].SetErr(errors.New("injected: disk full"))
	if err := card1.AddCIDR("eni-card1", p); err != nil {
		t.Fatalf("card 1 adding the address while its checkpoint fails: %v", err)
	}
}
