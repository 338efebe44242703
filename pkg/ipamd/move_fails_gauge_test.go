package ipamd

import (
	"log/slog"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/vpc-cni/vpc-cni/pkg/metrics"
)

// TestFailedQuarantinedMoveIsCountedOnceAndHealed: card 0 holds "victim"
// quarantined at 10.0.0.10 when EC2 lists the address on card 1's ENI,
// and card 1's checkpoint write of the move fails, so both cards keep
// the pod (card 0 pending, card 1 on its ENI). The quarantined gauge
// counts it once then, not on both cards. Once card 1's checkpoint works
// again, the next reconcile has card 0 forget its copy: the pod holds its
// address on an ENI, so the gauge and card 0's count are 0 and card 0's
// checkpoint no longer lists it. Before, card 0 kept the copy until the
// pod's DEL (and across restarts): the gauge showed a quarantined pod
// that was not.
func TestFailedQuarantinedMoveIsCountedOnceAndHealed(t *testing.T) {
	cs, ckpts := twoCardStores(t, 30*time.Second)
	card0, card1 := cs.all()[0].store, cs.all()[1].store
	addr, p := quarantineVictimOnCard0(t, card0)
	o := &observer{m: metrics.New("test"), cards: cs}
	gauge := func() float64 {
		t.Helper()
		o.counts()
		var m dto.Metric
		if err := o.m.QuarantinedIPs.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetGauge().GetValue()
	}
	if g := gauge(); g != 1 {
		t.Fatalf("quarantined gauge after the eviction: %v, want 1", g)
	}
	moveWithFailingWrite(t, ckpts, card1, p)
	if g := gauge(); g > 1 {
		t.Errorf("quarantined gauge during the failed move: %v, want the pod counted at most once", g)
	}
	cs.settlePending(slog.Default(), false) // a reconcile while the disk is still full
	if st := card0.Stats(); st.Pending != 1 {
		t.Fatalf("card 0 while card 1 cannot write: %+v, want its copy kept", st)
	}
	ckpts[1].SetErr(nil)
	cs.settlePending(slog.Default(), false) // the next reconcile
	if g := gauge(); g != 0 {
		t.Errorf("quarantined gauge once card 1 holds the pod durably: %v, want 0", g)
	}
	if st := card0.Stats(); st.Pending != 0 {
		t.Errorf("card 0: %+v, want its copy of the moved pod gone", st)
	}
	if checkpointHolds(ckpts[0], addr) {
		t.Errorf("card 0's checkpoint still lists %s, which card 1 holds", addr)
	}
	if !checkpointHolds(ckpts[1], addr) {
		t.Errorf("card 1's checkpoint does not list %s", addr)
	}
	h := &handout{cards: cs}
	released, err := h.release(cardKey("victim"))
	if err != nil || len(released) != 1 || released[0].ENIID != "eni-card1" {
		t.Fatalf("DEL: %+v %v, want %s released once, on eni-card1", released, err, addr)
	}
}
