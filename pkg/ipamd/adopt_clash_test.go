package ipamd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/metrics"
)

// TestRestoredPendingPodDoesNotTakeAnAddressAnotherCardGaveAway: card 0
// restores "victim" pending at 10.0.0.10 (its ENI went while ipamd was
// down), and card 1's ENI holds that address for pod "holder" (a
// checkpoint from before the quarantine, or a move whose write failed).
// The holder keeps the address and its rules; the victim is not given it,
// stays quarantined on card 0, and the clash is logged with the address,
// both keys and the ENI. The victim's DEL releases its entry without
// deleting the rules of the address, which are the holder's. Before, the
// clash was skipped silently and the victim's DEL deleted the holder's
// rules (the holder's traffic left by the main table).
func TestRestoredPendingPodDoesNotTakeAnAddressAnotherCardGaveAway(t *testing.T) {
	cs, ckpts := twoCardStores(t, 30*time.Second)
	card0, card1 := cs.all()[0].store, cs.all()[1].store
	addr := netip.MustParseAddr("10.0.0.10")
	if err := card1.AddCIDR("eni-card1", netip.PrefixFrom(addr, 32)); err != nil {
		t.Fatal(err)
	}
	for card, pod := range []string{"victim", "holder"} {
		if err := ckpts[card].Write(datastore.File{Version: datastore.CheckpointVersion, Allocations: []datastore.Allocation{
			{Key: cardKey(pod), Addr: addr, Meta: datastore.Metadata{K8sPodNamespace: "default", K8sPodName: pod}},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	host := newFakeHost()
	r := &restorer{cards: cs, host: host, log: log, dropped: metrics.New("test").RestoreDropped}
	if err := r.restoreAll(context.Background(), nil); err != nil {
		t.Fatal(err)
	}

	if a, ok := card1.Lookup(cardKey("holder")); !ok || a.Addr != addr || a.ENIID != "eni-card1" {
		t.Fatalf("holder after the restore: %+v %v, want %s on eni-card1", a, ok, addr)
	}
	if a, ok := card1.Lookup(cardKey("victim")); ok {
		t.Fatalf("card 1 gave the victim %+v", a)
	}
	if p := card0.Pending(); len(p) != 1 || p[0].Key != cardKey("victim") {
		t.Fatalf("card 0 pending: %+v, want the victim still quarantined", p)
	}
	if !clashLogged(t, logs.Bytes(), addr, "aws-cni/victim/eth0", "aws-cni/holder/eth0", "eni-card1") {
		t.Errorf("no Warn naming %s, both keys and eni-card1 in:\n%s", addr, logs.String())
	}

	h := &handout{cards: cs, host: host, log: log, observe: &observer{m: metrics.New("test"), cards: cs}}
	d := due{parent: context.Background(), at: time.Now().Add(5 * time.Second)}
	released, err := h.ReleasePod(&d, cardKey("victim"), "default", "victim")
	if err != nil || len(released) != 1 || released[0].Addr != addr || released[0].ENIID != "" {
		t.Fatalf("DEL of the victim: %+v %v, want its pending entry released", released, err)
	}
	host.mu.Lock()
	deleted := slices.Clone(host.podRules)
	host.mu.Unlock()
	if slices.Contains(deleted, addr) {
		t.Errorf("the victim's DEL deleted the rules of %s, which the holder on card 1 uses", addr)
	}
	if a, ok := card1.Lookup(cardKey("holder")); !ok || a.Addr != addr {
		t.Fatalf("holder after the victim's DEL: %+v %v", a, ok)
	}
	if _, err := card1.Assign(cardKey("new"), datastore.Metadata{K8sPodNamespace: "default", K8sPodName: "new"}); !errors.Is(err, datastore.ErrNoAvailableAddress) {
		t.Fatalf("a new pod on card 1: %v, want none available (the holder has the only address)", err)
	}
}

// clashLogged reports whether logs (JSON lines) hold a Warn naming ip,
// both keys and the ENI.
func clashLogged(t *testing.T, logs []byte, ip netip.Addr, quarantined, holder, eni string) bool {
	t.Helper()
	for _, line := range bytes.Split(logs, []byte("\n")) {
		var rec map[string]any
		if json.Unmarshal(line, &rec) != nil {
			continue
		}
		if rec["level"] == "WARN" && rec["ip"] == ip.String() && rec["quarantinedKey"] == quarantined &&
			rec["holderKey"] == holder && rec["eni"] == eni {
			return true
		}
	}
	return false
}

// TestClashWarnedOnceNotAtEachReconcile: the restore's warning that a
// restored quarantined pod's address is held by another card's pod is
// given once. Each reconcile runs the same settling of pending pods
// between cards (for addresses kept from new pods, othercards.go), and
// before, each one warned again, until the quarantined pod's DEL.
func TestClashWarnedOnceNotAtEachReconcile(t *testing.T) {
	cs, ckpts := twoCardStores(t, 30*time.Second)
	addr := netip.MustParseAddr("10.0.0.10")
	if err := cs.all()[1].store.AddCIDR("eni-card1", netip.PrefixFrom(addr, 32)); err != nil {
		t.Fatal(err)
	}
	for card, pod := range []string{"victim", "holder"} {
		if err := ckpts[card].Write(datastore.File{Version: datastore.CheckpointVersion, Allocations: []datastore.Allocation{
			{Key: cardKey(pod), Addr: addr, Meta: datastore.Metadata{K8sPodNamespace: "default", K8sPodName: pod}},
		}}); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	r := &restorer{cards: cs, host: newFakeHost(), log: log, dropped: metrics.New("test").RestoreDropped}
	if err := r.restoreAll(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		cs.settlePending(log, false) // what each reconcile runs
	}
	if n := bytes.Count(logs.Bytes(), []byte(`"level":"WARN","msg":"a restored pod's address is held by another pod`)); n != 1 {
		t.Errorf("the clash was warned %d times over the restore and 3 reconciles, want once:\n%s", n, logs.String())
	}
}
