package ipamd

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
)

// Health is SERVING only while the node is initialised and every card's
// checkpoint can be written: with /var/run/aws-node read-only every ADD
// fails, so the node must not look ready (docs/compatibility.md, "ipamd:
// checkpoint, logs and readiness").

// cpHealth records the result of each card's last checkpoint write. It is
// the one owner of that state; writers are the stores (under their own
// locks), readers the gRPC health service.
type cpHealth struct {
	mu      sync.Mutex
	failing map[int]error // card → last write error, absent when fine
	kick    chan struct{} // signalled (coalesced) on every change
	onSet   func(bool)    // metric hook
}

func newCPHealth(onSet func(bool)) *cpHealth {
	return &cpHealth{failing: map[int]error{}, kick: make(chan struct{}, 1), onSet: onSet}
}

func (h *cpHealth) record(card int, err error) {
	h.mu.Lock()
	_, was := h.failing[card]
	if err != nil {
		h.failing[card] = err
	} else {
		delete(h.failing, card)
	}
	changed := was != (err != nil)
	ok := len(h.failing) == 0
	h.mu.Unlock()
	if !changed {
		return
	}
	if h.onSet != nil {
		h.onSet(ok)
	}
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// changed is signalled (coalesced) whenever health changes.
func (h *cpHealth) changed() <-chan struct{} { return h.kick }

// ok reports whether every checkpoint is writable, and one error if not.
func (h *cpHealth) ok() (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, err := range h.failing {
		return false, err
	}
	return true, nil
}

// watchedCheckpointer reports each write's result to cpHealth.
type watchedCheckpointer struct {
	datastore.Checkpointer
	card   int
	health *cpHealth
}

func (w watchedCheckpointer) Write(f datastore.File) error {
	err := w.Checkpointer.Write(f)
	w.health.record(w.card, err)
	return err
}

// CheckpointWritable reports whether every card's last checkpoint write
// succeeded.
func (n *IPAM) CheckpointWritable() bool {
	ok, _ := n.cpHealth.ok()
	return ok
}

// runProbe retries the checkpoint of every card whose last write failed,
// every CheckpointRetry, so health returns to SERVING as soon as the file
// can be written again, even with no pod activity.
func (h *cpHealth) runProbe(ctx context.Context, cards *cardSet, period time.Duration, log *slog.Logger) {
	every(ctx, period, func(context.Context) {
		if ok, _ := h.ok(); ok {
			return
		}
		for _, c := range cards.all() {
			if !c.store.Unpersisted() {
				continue
			}
			if err := c.store.Persist(); err != nil {
				log.Debug("checkpoint still not writable", "card", c.index, "err", err)
				continue
			}
			log.Info("checkpoint writable again", "card", c.index)
		}
	})
}
