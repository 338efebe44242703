package ipamd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/metrics"
)

// TestRestoredQuarantinedAddressInABusyPrefixIsNotReissued: prefix
// delegation, a multi-NIC pod holds 10.0.1.0 of card 1's prefix
// 10.0.1.0/28 and, quarantined on card 0, 10.0.1.5: while ipamd was down
// EC2 put that address into card 1's prefix. Another pod holds 10.0.1.1,
// so card 1 cannot drop the prefix as it drops a lone address. Before,
// card 1 only warned and handed 10.0.1.5 to one of the next pods while
// the multi-NIC pod still used it: two pods, one IP. Now no new pod gets
// it; after the pod's DEL the next reconcile has it cool on card 1.
func TestRestoredQuarantinedAddressInABusyPrefixIsNotReissued(t *testing.T) {
	cs, ckpts := twoCardStoresIn(t, datastore.ModePrefixIPv4, 30*time.Second)
	card0, card1 := cs.all()[0].store, cs.all()[1].store
	prefix := netip.MustParsePrefix("10.0.1.0/28")
	other, quarantined, busy := netip.MustParseAddr("10.0.1.0"), netip.MustParseAddr("10.0.1.5"), netip.MustParseAddr("10.0.1.1")
	if err := card1.AddCIDR("eni-card1", prefix); err != nil {
		t.Fatal(err)
	}
	meta := datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "multi", InterfacesCount: 2}
	if err := ckpts[0].Write(datastore.File{Version: datastore.CheckpointVersion,
		Allocations: []datastore.Allocation{{Key: cardKey("multi"), Addr: quarantined, Meta: meta}}}); err != nil {
		t.Fatal(err)
	}
	if err := ckpts[1].Write(datastore.File{Version: datastore.CheckpointVersion, Allocations: []datastore.Allocation{
		{Key: cardKey("multi"), Addr: other, Meta: meta},
		{Key: cardKey("busy"), Addr: busy, Meta: datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "busy"}},
	}}); err != nil {
		t.Fatal(err)
	}
	r := &restorer{cards: cs, host: newFakeHost(), log: slog.Default(), dropped: metrics.New("test").RestoreDropped}
	if err := r.restoreAll(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if st := card0.Stats(); st.Pending != 1 {
		t.Fatalf("card 0: %+v, want the pod's address quarantined there", st)
	}
	got := 0
	for i := range 16 {
		name := fmt.Sprintf("new-%d", i)
		a, err := card1.Assign(cardKey(name), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: name})
		if errors.Is(err, datastore.ErrNoAvailableAddress) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if a.Addr == quarantined {
			t.Fatalf("new pod %s got %s, which the multi-NIC pod quarantined on card 0 still uses", name, a.Addr)
		}
		got++
	}
	if got != 13 {
		t.Fatalf("%d new pods got an address of %s, want the 13 no pod holds", got, prefix)
	}

	h := &handout{cards: cs}
	if released, err := h.release(cardKey("multi")); err != nil || len(released) != 2 {
		t.Fatalf("DEL of the multi-NIC pod: %+v %v, want both its addresses", released, err)
	}
	cs.settlePending(slog.Default(), false) // what each reconcile runs
	if st := card1.Stats(); st.CoolingIPs != 2 || st.AvailableIPs != 0 {
		t.Fatalf("card 1 after the DEL: %+v, want both of the pod's addresses cooling there", st)
	}
	if st := card0.Stats(); st.Pending != 0 || len(card0.PendingCooling()) != 0 {
		t.Fatalf("card 0 after the DEL: %+v cooling %v, want nothing left there", st, card0.PendingCooling())
	}
	if a, err := card1.Assign(cardKey("late"), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "late"}); err == nil {
		t.Fatalf("a new pod got %s within the cooldown of the multi-NIC pod's DEL", a.Addr)
	}
}
