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

// twoCardStores builds the datastores of cards 0 and 1 as cardSet.build
// wires them, each with an in-memory checkpoint and one ENI.
func twoCardStores(t *testing.T, cooldown time.Duration) (*cardSet, [2]*datastore.MemCheckpointer) {
	t.Helper()
	return twoCardStoresIn(t, datastore.ModeSecondaryIPv4, cooldown)
}

// twoCardStoresIn is twoCardStores in the given mode.
func twoCardStoresIn(t *testing.T, mode datastore.Mode, cooldown time.Duration) (*cardSet, [2]*datastore.MemCheckpointer) {
	t.Helper()
	cs := &cardSet{}
	var ckpts [2]*datastore.MemCheckpointer
	var list []*poolManager
	for idx := range 2 {
		ckpts[idx] = &datastore.MemCheckpointer{}
		st, err := datastore.New(datastore.Options{Mode: mode, CooldownPeriod: cooldown,
			Checkpointer: ckpts[idx],
			Others:       func(p netip.Prefix) datastore.Foreign { return cs.foreign(idx, p, slog.Default()) }})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.AddENI(datastore.ENI{ID: []string{"eni-card0", "eni-card1"}[idx], DeviceNumber: 0,
			IsPrimary: idx == 0, RouteTableID: 2 + idx}); err != nil {
			t.Fatal(err)
		}
		list = append(list, &poolManager{index: idx, store: st})
	}
	cs.list.Store(&list)
	return cs, ckpts
}

func cardKey(name string) datastore.Key {
	return datastore.Key{NetworkName: "aws-cni", ContainerID: name, IfName: "eth0"}
}

func checkpointHolds(m *datastore.MemCheckpointer, addr netip.Addr) bool {
	f, _ := m.Read()
	for _, a := range f.Allocations {
		if a.Addr == addr {
			return true
		}
	}
	return false
}

// TestQuarantinedAddressOnAnotherCardIsNotReissued: a pod on card 0 holds
// 10.0.0.10; EC2 takes it away and the reconcile quarantines it on card 0.
// EC2 then lists it on card 1's ENI (same subnet). Before, card 1's store
// saw a free address and gave it to the next pod there: two pods, one IP,
// and the first pod's DEL deleted the new pod's rules. Now card 1 takes
// the quarantined entry over, gives the address back to its pod, and no
// new pod gets it; the pod's DEL releases it once.
func TestQuarantinedAddressOnAnotherCardIsNotReissued(t *testing.T) {
	cs, ckpts := twoCardStores(t, 30*time.Second)
	card0, card1 := cs.all()[0].store, cs.all()[1].store
	victimAddr := netip.MustParseAddr("10.0.0.10")
	p := netip.PrefixFrom(victimAddr, 32)
	if err := card0.AddCIDR("eni-card0", p); err != nil {
		t.Fatal(err)
	}
	victim, err := card0.Assign(cardKey("victim"), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "victim"})
	if err != nil || victim.Addr != victimAddr {
		t.Fatalf("victim: %+v %v", victim, err)
	}
	// EC2 moves the address to card 1's ENI before card 0's reconcile
	// noticed: card 1 must not take it while card 0 still holds it.
	if err := card1.AddCIDR("eni-card1", p); !errors.Is(err, datastore.ErrDuplicateCIDR) {
		t.Fatalf("card 1 adding a CIDR card 0 still holds: %v, want ErrDuplicateCIDR", err)
	}
	if ev, err := card0.RemoveCIDR("eni-card0", p, true); err != nil || len(ev) != 1 {
		t.Fatalf("card 0's reconcile: %+v %v", ev, err)
	}
	if err := card1.AddCIDR("eni-card1", p); err != nil {
		t.Fatal(err)
	}
	if a, err := card1.Assign(cardKey("new"), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "new"}); err == nil {
		t.Fatalf("a new pod on card 1 got %s, the address the evicted pod of card 0 still holds", a.Addr)
	} else if !errors.Is(err, datastore.ErrNoAvailableAddress) {
		t.Fatal(err)
	}
	if a, ok := card1.Lookup(cardKey("victim")); !ok || a.Addr != victimAddr || a.ENIID != "eni-card1" {
		t.Fatalf("victim on card 1: %+v %v, want %s on eni-card1", a, ok, victimAddr)
	}
	if got := card1.Readopted(); len(got) != 1 || got[0].Key != cardKey("victim") {
		t.Fatalf("card 1's readopted pods: %+v, want the victim (its rules must name card 1's table)", got)
	}
	if st := card0.Stats(); st.Pods != 0 || st.Pending != 0 {
		t.Fatalf("card 0 after the move: %+v, want the victim gone from it", st)
	}
	if !checkpointHolds(ckpts[1], victimAddr) || checkpointHolds(ckpts[0], victimAddr) {
		t.Fatalf("checkpoints: card 0 holds %s: %v, card 1: %v; want only card 1",
			victimAddr, checkpointHolds(ckpts[0], victimAddr), checkpointHolds(ckpts[1], victimAddr))
	}
	h := &handout{cards: cs}
	released, err := h.release(cardKey("victim"))
	if err != nil || len(released) != 1 || released[0].Addr != victimAddr {
		t.Fatalf("DEL of the victim: %+v %v, want %s released once", released, err, victimAddr)
	}
}

// TestRestoredPendingPodOnAnotherCardIsNotReissued: while ipamd was down
// EC2 moved a quarantined pod's address from card 0 to card 1's ENI. At
// the start every card adds its CIDRs before any restores its checkpoint,
// so card 0 restores the pod pending while card 1 holds the address free.
// Before, card 1 gave it to the next pod; now the restore moves the pod to
// card 1, which keeps the address for it.
func TestRestoredPendingPodOnAnotherCardIsNotReissued(t *testing.T) {
	cs, ckpts := twoCardStores(t, 30*time.Second)
	card0, card1 := cs.all()[0].store, cs.all()[1].store
	victimAddr := netip.MustParseAddr("10.0.0.10")
	if err := card1.AddCIDR("eni-card1", netip.PrefixFrom(victimAddr, 32)); err != nil {
		t.Fatal(err)
	}
	if err := ckpts[0].Write(datastore.File{Version: datastore.CheckpointVersion, Allocations: []datastore.Allocation{
		{Key: cardKey("victim"), Addr: victimAddr, Meta: datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "victim"}},
	}}); err != nil {
		t.Fatal(err)
	}
	r := &restorer{cards: cs, host: newFakeHost(), log: slog.Default(), dropped: metrics.New("test").RestoreDropped}
	if err := r.restoreAll(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if a, err := card1.Assign(cardKey("new"), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "new"}); err == nil {
		t.Fatalf("a new pod on card 1 got %s, the address card 0's restored pod still holds", a.Addr)
	} else if !errors.Is(err, datastore.ErrNoAvailableAddress) {
		t.Fatal(err)
	}
	if a, ok := card1.Lookup(cardKey("victim")); !ok || a.Addr != victimAddr || a.ENIID != "eni-card1" {
		t.Fatalf("victim on card 1: %+v %v", a, ok)
	}
	if st := card0.Stats(); st.Pods != 0 {
		t.Fatalf("card 0 still holds the victim: %+v", st)
	}
}
