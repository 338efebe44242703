package ipamd

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
)

// TestDELDuringQuarantinedMoveLeavesNothingHeld: card 1 is adding a CIDR
// with a pod quarantined on card 0 inside it, and the pod's DEL lands
// between card 1 asking card 0 what it holds and taking the entry over
// (AddCIDR asks before taking its own lock). The DEL answered, so no one
// will release the pod again: card 1 must not hold it. Before, card 1
// kept the taken-over allocation for good (no DEL, no owner to sweep it
// without PodLinks), and the address served no pod.
func TestDELDuringQuarantinedMoveLeavesNothingHeld(t *testing.T) {
	cs := &cardSet{}
	var list []*poolManager
	var del func() // the DEL, run once card 1 has asked card 0
	for idx := range 2 {
		others := func(p netip.Prefix) datastore.Foreign {
			f := cs.foreign(idx, p, slog.Default())
			if del != nil {
				del()
				del = nil
			}
			return f
		}
		st, err := datastore.New(datastore.Options{Mode: datastore.ModeSecondaryIPv4, CooldownPeriod: 30 * time.Second,
			Checkpointer: &datastore.MemCheckpointer{}, Others: others})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.AddENI(datastore.ENI{ID: []string{"eni-card0", "eni-card1"}[idx], IsPrimary: idx == 0, RouteTableID: 2 + idx}); err != nil {
			t.Fatal(err)
		}
		list = append(list, &poolManager{index: idx, store: st})
	}
	cs.list.Store(&list)
	card0, card1 := list[0].store, list[1].store
	addr := netip.MustParseAddr("10.0.0.10")
	p := netip.PrefixFrom(addr, 32)
	if err := card0.AddCIDR("eni-card0", p); err != nil {
		t.Fatal(err)
	}
	if _, err := card0.Assign(cardKey("victim"), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "victim"}); err != nil {
		t.Fatal(err)
	}
	if _, err := card0.RemoveCIDR("eni-card0", p, true); err != nil {
		t.Fatal(err)
	}
	h := &handout{cards: cs}
	var released []datastore.Assignment
	del = func() {
		var err error
		if released, err = h.release(cardKey("victim")); err != nil {
			t.Error(err)
		}
	}
	if err := card1.AddCIDR("eni-card1", p); err != nil {
		t.Fatal(err)
	}
	if len(released) != 1 || released[0].Addr != addr {
		t.Fatalf("the DEL released %+v, want %s", released, addr)
	}
	for i, c := range []*datastore.Store{card0, card1} {
		if a, ok := c.Lookup(cardKey("victim")); ok {
			t.Errorf("card %d holds the DELeted victim: %+v", i, a)
		}
	}
	if st := card1.Stats(); st.AssignedIPs != 0 || st.CoolingIPs != 1 {
		t.Errorf("card 1 after the move and the DEL: %+v, want %s cooling, not assigned", st, addr)
	}
}
