package ipamd

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestFailingMoveWriteIsWarnedOncePerCause: card 1 took over a pod
// quarantined on card 0 but cannot write its checkpoint, so card 0 keeps
// its copy and each reconcile's settle retries the write. Before, every
// reconcile warned again while the disk stayed full; now the first
// failure warns, the same cause again is logged at debug level, a new
// cause warns once more, and the retry still heals the copy once the disk
// works.
func TestFailingMoveWriteIsWarnedOncePerCause(t *testing.T) {
	cs, ckpts := twoCardStores(t, 30*time.Second)
	card0, card1 := cs.all()[0].store, cs.all()[1].store
	addr, p := quarantineVictimOnCard0(t, card0)
	moveWithFailingWrite(t, ckpts, card1, p)
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	warnings := func() int {
		return strings.Count(buf.String(), "level=WARN")
	}
	for range 5 { // reconciles while the disk stays full
		cs.settlePending(log, false)
	}
	if n := warnings(); n != 1 {
		t.Fatalf("%d warnings over 5 reconciles with the same failure, want 1:\n%s", n, buf.String())
	}
	ckpts[1].SetErr(errors.New("injected: read-only file system"))
	cs.settlePending(log, false)
	cs.settlePending(log, false)
	if n := warnings(); n != 2 {
		t.Fatalf("%d warnings after the cause changed, want 2:\n%s", n, buf.String())
	}
	if st := card0.Stats(); st.Pending != 1 {
		t.Fatalf("card 0 while card 1 cannot write: %+v, want its copy kept", st)
	}
	ckpts[1].SetErr(nil)
	cs.settlePending(log, false)
	if st := card0.Stats(); st.Pending != 0 || !checkpointHolds(ckpts[1], addr) {
		t.Fatalf("card 0 once card 1 writes again: %+v, want its copy gone and card 1's checkpoint listing %s", st, addr)
	}
}
