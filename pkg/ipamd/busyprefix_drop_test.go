package ipamd

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/metrics"
)

// restoreBusyPrefixQuarantine sets up what
// TestRestoredQuarantinedAddressInABusyPrefixIsNotReissued does: card 1
// keeps 10.0.1.5 of its busy prefix 10.0.1.0/28 from new pods for the
// multi-NIC pod "multi" quarantined on card 0. It then gives new pods the
// 13 addresses no pod holds, so only a released address can serve more.
func restoreBusyPrefixQuarantine(t *testing.T, cooldown time.Duration) (*cardSet, *restorer, netip.Addr) {
	t.Helper()
	cs, ckpts := twoCardStoresIn(t, datastore.ModePrefixIPv4, cooldown)
	card1 := cs.all()[1].store
	quarantined := netip.MustParseAddr("10.0.1.5")
	if err := card1.AddCIDR("eni-card1", netip.MustParsePrefix("10.0.1.0/28")); err != nil {
		t.Fatal(err)
	}
	meta := datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "multi", InterfacesCount: 2}
	if err := ckpts[0].Write(datastore.File{Version: datastore.CheckpointVersion,
		Allocations: []datastore.Allocation{{Key: cardKey("multi"), Addr: quarantined, Meta: meta}}}); err != nil {
		t.Fatal(err)
	}
	if err := ckpts[1].Write(datastore.File{Version: datastore.CheckpointVersion, Allocations: []datastore.Allocation{
		{Key: cardKey("multi"), Addr: netip.MustParseAddr("10.0.1.0"), Meta: meta},
		{Key: cardKey("busy"), Addr: netip.MustParseAddr("10.0.1.1"), Meta: datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "busy"}},
	}}); err != nil {
		t.Fatal(err)
	}
	r := &restorer{cards: cs, host: newFakeHost(), log: slog.Default(), dropped: metrics.New("test").RestoreDropped}
	if err := r.restoreAll(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for i := range 13 {
		name := fmt.Sprintf("new-%d", i)
		if _, err := card1.Assign(cardKey(name), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: name}); err != nil {
			t.Fatal(err)
		}
	}
	return cs, r, quarantined
}

// TestReservedAddressCoolsWhenItsPendingPodIsDropped: card 1 keeps
// 10.0.1.5 from new pods for a pod quarantined on card 0. That pod's host
// veth is gone, so the pending drop forgets it without a DEL. Before, the
// next reconcile's settle freed the address on card 1 at once and the next
// new pod there got it, inheriting the gone pod's conntrack and policy
// state; now it cools for IP_COOLDOWN_PERIOD like any released address.
func TestReservedAddressCoolsWhenItsPendingPodIsDropped(t *testing.T) {
	cs, r, quarantined := restoreBusyPrefixQuarantine(t, 30*time.Second)
	card0, card1 := cs.all()[0].store, cs.all()[1].store

	r.dropPending(context.Background()) // no host links: no pod's veth is seen
	if st := card0.Stats(); st.Pending != 0 {
		t.Fatalf("card 0 after the drop: %+v, want the pod forgotten", st)
	}
	cs.settlePending(slog.Default(), false) // what each reconcile runs
	if st := card1.Stats(); st.CoolingIPs != 1 || st.AvailableIPs != 0 {
		t.Fatalf("card 1 after the drop: %+v, want %s cooling, nothing free", st, quarantined)
	}
	if a, err := card1.Assign(cardKey("late"), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "late"}); err == nil {
		t.Fatalf("a new pod got %s right after the pod holding it was dropped, within the cooldown", a.Addr)
	}
}
