package ipamd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
)

// cardSet is the managed network cards' pool managers, card 0 first. Init
// builds it once, before the node is ready, and it never changes after;
// before that it is empty. It owns the cards' checkpoint logs, which close
// folds into upstream's file once every writer has stopped, so a clean
// stop leaves a file upstream reads (docs/compatibility.md).
type cardSet struct {
	list  atomic.Pointer[[]*poolManager]
	ckpts []*datastore.LogCheckpointer // written by build (Init), read by close after Init returned
	// moveWriteFail is each card's last failure to write pending pods
	// moved to it (settlePending), warned of once per cause.
	moveMu        sync.Mutex
	moveWriteFail map[int]string
}

// moveWriteFailed records card's failure to write moved pending pods
// (err nil: written) and reports whether it is a new cause to warn of:
// each reconcile retries the write, and a full disk is worth one warning.
func (s *cardSet) moveWriteFailed(card int, err error) bool {
	s.moveMu.Lock()
	defer s.moveMu.Unlock()
	if err == nil {
		delete(s.moveWriteFail, card)
		return false
	}
	if s.moveWriteFail[card] == err.Error() {
		return false
	}
	if s.moveWriteFail == nil {
		s.moveWriteFail = map[int]string{}
	}
	s.moveWriteFail[card] = err.Error()
	return true
}

// all is every managed card, card 0 first (none before Init built them).
func (s *cardSet) all() []*poolManager {
	if l := s.list.Load(); l != nil {
		return *l
	}
	return nil
}

// of is the card with the given index, or nil when it is not managed.
func (s *cardSet) of(index int) *poolManager {
	for _, c := range s.all() {
		if c.index == index {
			return c
		}
	}
	return nil
}

// first is card 0, where pods go first.
func (s *cardSet) first() (*poolManager, bool) {
	if all := s.all(); len(all) > 0 {
		return all[0], true
	}
	return nil, false
}

// atHardLimit reports whether every card is at its hard limit, as the
// last pool cycle found.
func (s *cardSet) atHardLimit() bool {
	all := s.all()
	for _, c := range all {
		if c.fullText() == "" {
			return false
		}
	}
	return len(all) > 0
}

// holdsENI tells whether any card's datastore holds the ENI.
func (s *cardSet) holdsENI(id string) bool {
	for _, c := range s.all() {
		if _, ok := c.store.ENI(id); ok {
			return true
		}
	}
	return false
}

// nextCoolingEnd is the earliest end of a cooldown over every card.
func (s *cardSet) nextCoolingEnd() (time.Time, bool) {
	var first time.Time
	found := false
	for _, c := range s.all() {
		if at, ok := c.store.NextCoolingEnd(); ok && (!found || at.Before(first)) {
			first, found = at, true
		}
	}
	return first, found
}

// quarantined counts card c's pending allocations (st is c's Stats) whose
// address is on no ENI of the node. An address another card keeps from
// new pods for such a pod (datastore othercards.go) is on that card's
// ENI, counted there as assigned: counted here too, one address would
// show twice in /v1/pool and the gauges.
func (s *cardSet) quarantined(c *poolManager, st datastore.Stats) int {
	if st.Pending == 0 {
		return 0
	}
	n := st.Pending
	for _, a := range c.store.Pending() {
		for _, o := range s.all() {
			if o != c && o.store.Reserves(a.Addr, a.Key) {
				n--
				break
			}
		}
	}
	return n
}

// foreign is what the cards other than card hold of p: a card's address
// quarantined there must not become free on card when EC2 moves it to
// card's ENI (datastore othercards.go).
func (s *cardSet) foreign(card int, p netip.Prefix, log *slog.Logger) datastore.Foreign {
	var f datastore.Foreign
	var others []*poolManager
	for _, c := range s.all() {
		if c.index == card {
			continue
		}
		others = append(others, c)
		if o, ok := c.store.OverlappingCIDR(p); ok && !f.Overlap.IsValid() {
			f.Overlap = o
		}
		allocs, cool := c.store.PendingIn(p)
		f.Allocations = append(f.Allocations, allocs...)
		f.Cooling = append(f.Cooling, cool...)
	}
	f.Forget = func(taken []datastore.Allocation, cool []datastore.Cooling) []datastore.Allocation {
		return forgetMoved(others, card, taken, cool, log)
	}
	return f
}

// refuses reports whether card's AddCIDR refuses p for another card's
// quarantined pod whose key holds another address on card (until its
// DEL): no EC2 answer changes that.
func (s *cardSet) refuses(card *poolManager, p netip.Prefix, log *slog.Logger) bool {
	return card.store.Untakeable(s.foreign(card.index, p, log))
}

// forgetMoved drops from the other cards the pending entries card took
// over and returns the taken allocations none of them still held: their
// pod's DEL landed meanwhile, so card releases them too.
func forgetMoved(others []*poolManager, card int, taken []datastore.Allocation, cool []datastore.Cooling, log *slog.Logger) []datastore.Allocation {
	held := map[datastore.Key]bool{}
	for _, c := range others {
		missing, err := c.store.ForgetPending(taken, cool)
		if err != nil {
			log.Warn("could not persist that a quarantined address moved to another card; both cards keep it",
				"card", c.index, "err", err)
		}
		for _, a := range taken {
			if !slices.ContainsFunc(missing, func(m datastore.Allocation) bool { return m.Key == a.Key && m.Addr == a.Addr }) {
				held[a.Key] = true
			}
		}
	}
	var gone []datastore.Allocation
	for _, a := range taken {
		if !held[a.Key] {
			log.Info("a quarantined address moved to another card's ENI as its pod was released; released there too",
				"key", a.Key.String(), "ip", a.Addr, "card", card)
			gone = append(gone, a)
			continue
		}
		log.Info("an address quarantined on one network card is now on another card's ENI; that card keeps it for its pod",
			"key", a.Key.String(), "ip", a.Addr, "card", card)
	}
	return gone
}

// forgetHeld drops the other cards' pending copies of pods card holds on
// its ENI and has written: the copies a move whose write failed left.
func forgetHeld(others []*poolManager, card int, held []datastore.Allocation, log *slog.Logger) {
	if len(held) == 0 {
		return
	}
	for _, c := range others {
		if _, err := c.store.ForgetPending(held, nil); err != nil {
			log.Warn("could not persist dropping the copy of a pod another card holds", "card", c.index, "err", err)
		}
	}
	for _, a := range held {
		log.Info("a quarantined pod's earlier move to another card is now written there; its old card forgets its copy",
			"key", a.Key.String(), "ip", a.Addr, "card", card)
	}
}

// settlePending moves the other cards' pending entries whose address is
// in a CIDR of a card to that card (datastore Adopt): a restart restores
// the checkpoints after every card added its CIDRs, so AddCIDR did not.
// Adopt also keeps an address a card cannot take from its new pods until
// the pending pod's DEL, so each reconcile runs it again: then the
// address cools there. start says whether this is the start's run: a
// clash (another card's pod holds a restored pod's address) can only come
// from the checkpoints, so it is warned of then, not at every reconcile.
func (s *cardSet) settlePending(log *slog.Logger, start bool) {
	all := s.all()
	for _, to := range all {
		var others []*poolManager
		var allocs []datastore.Allocation
		var cool []datastore.Cooling
		from := map[netip.Addr]int{}
		for _, c := range all {
			if c == to {
				continue
			}
			others = append(others, c)
			a, cl := c.store.PendingIn(netip.Prefix{})
			for _, x := range a {
				from[x.Addr] = c.index
			}
			allocs, cool = append(allocs, a...), append(cool, cl...)
		}
		got, err := to.store.Adopt(allocs, cool)
		clashLevel := slog.LevelWarn
		if !start {
			clashLevel = slog.LevelDebug
		}
		for _, c := range got.Clashes {
			log.Log(context.Background(), clashLevel, "a restored pod's address is held by another pod on another card's ENI: that pod keeps it, "+
				"the restored pod stays quarantined and is not given it",
				"ip", c.Pending.Addr, "quarantinedKey", c.Pending.Key.String(), "holderKey", c.Holder.String(),
				"eni", c.ENIID, "from", from[c.Pending.Addr], "card", to.index)
		}
		for _, r := range got.Refused {
			msg := "a restored pod's address is on an ENI of another card that holds the pod's other address (multi-NIC): " +
				"that card does not use it until the pod's DEL"
			if !r.Dropped {
				msg = "a restored pod's address is in a prefix other pods use on another card that holds the pod's other address (multi-NIC): " +
					"that card keeps it from new pods until the pod's DEL"
			}
			log.Warn(msg, "ip", r.Pending.Addr, "key", r.Pending.Key.String(),
				"cidr", r.CIDR, "eni", r.ENIID, "from", from[r.Pending.Addr], "card", to.index)
		}
		if s.moveWriteFailed(to.index, err) {
			log.Warn("could not persist pending pods moved to another card; both cards keep them, retried at each reconcile",
				"card", to.index, "err", err)
		}
		if err != nil {
			log.Debug("could not persist pending pods moved to another card", "card", to.index, "err", err)
			continue
		}
		forgetHeld(others, to.index, got.Held, log)
		if len(got.Allocations)+len(got.Cooling) == 0 {
			continue
		}
		for _, a := range forgetMoved(others, to.index, got.Allocations, got.Cooling, log) {
			if _, err := to.store.UnassignAddr(a.Key, a.Addr); err != nil && !errors.Is(err, datastore.ErrUnknownPod) {
				log.Warn("could not release a pending pod moved to another card after its release", "key", a.Key.String(),
					"ip", a.Addr, "card", to.index, "err", err)
			}
		}
	}
}

// build creates one pool manager, with its datastore and checkpoint log,
// per managed network card.
func (s *cardSet) build(cfg config.Config, node *nodeState, env *poolEnv, health *cpHealth, track *introspect.Tracker, log *slog.Logger) error {
	indexes := []int{0}
	if cfg.EnableMultiNIC {
		for _, c := range node.typ.NetworkCards {
			if c.Index != 0 {
				indexes = append(indexes, c.Index)
			}
		}
	}
	mode := datastore.ModeSecondaryIPv4
	switch {
	case cfg.EnableIPv6:
		mode = datastore.ModeIPv6
	case node.pd:
		mode = datastore.ModePrefixIPv4
	}
	var list []*poolManager
	for _, idx := range indexes {
		ckpt := datastore.NewLogCheckpointer(datastore.CheckpointPath(cfg.BackingStore, idx))
		ckpt.Log = log.With("component", "checkpoint", "card", idx)
		s.ckpts = append(s.ckpts, ckpt)
		st, err := datastore.New(datastore.Options{
			Mode:           mode,
			CooldownPeriod: cfg.IPCooldown,
			Checkpointer:   watchedCheckpointer{Checkpointer: ckpt, card: idx, health: health},
			Others:         func(p netip.Prefix) datastore.Foreign { return s.foreign(idx, p, log) },
		})
		if err != nil {
			return fmt.Errorf("ipamd init: datastore of card %d: %w", idx, err)
		}
		maxENIs := node.typ.MaxENIs
		for _, c := range node.typ.NetworkCards {
			if c.Index == idx && c.MaxENIs > 0 {
				maxENIs = c.MaxENIs
			}
		}
		if cfg.MaxENI >= 1 && cfg.MaxENI < maxENIs {
			maxENIs = cfg.MaxENI
		}
		list = append(list, newPoolManager(idx, st, maxENIs, node.pd, track, env))
	}
	s.list.Store(&list)
	return nil
}

// close folds every card's checkpoint log into its file.
func (s *cardSet) close(log *slog.Logger) {
	for _, c := range s.ckpts {
		if err := c.Close(); err != nil {
			log.Warn("folding the checkpoint log at stop failed; the next start folds it", "err", err)
		}
	}
}
