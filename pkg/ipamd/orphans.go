package ipamd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// A DEL that reaches no ipamd (it is restarting) is reported as done by
// the plugin, which then removes the pod's host veth; the runtime never
// retries it. The orphan sweep makes such a DEL true in the end: an
// allocation whose pod's host veth has been absent for a grace period is
// released (docs/compatibility.md, "ipamd: checkpoint, logs and
// readiness").

// podLinkSuffix is the suffix a pod's host veth name ends with, or "" when
// the allocation names no pod (it is then never judged by its veth).
func podLinkSuffix(a datastore.Allocation) string {
	if a.Key.NetworkName == datastore.RecoveredNetworkName {
		return a.Key.ContainerID
	}
	if a.Meta.K8sPodNamespace == "" || a.Meta.K8sPodName == "" {
		return ""
	}
	return vethname.Suffix(a.Meta.K8sPodNamespace, a.Meta.K8sPodName)
}

// orphanSweeper judges pods by their host veth. absentSince, since when
// each allocation's veth has been seen absent, is used only by the sweep
// goroutine (run, or a test calling sweep).
type orphanSweeper struct {
	links    PodLinks // nil: every pod is live, nothing is swept
	host     HostNetwork
	cards    *cardSet      // the managed cards, built by Init before any sweep
	released func()        // after a sweep released addresses: wake waiters, observe, plan
	every    time.Duration // OrphanSweep
	grace    time.Duration // OrphanGrace
	count    prometheus.Counter
	log      *slog.Logger

	absentSince map[datastore.Key]time.Time

	mu      sync.Mutex
	claimed map[datastore.Key]bool // recovered keys a DEL named (claim); guarded by mu
}

// claim marks addresses recovered from the host (by veth name) whose pod
// a DEL named: the sweep releases each as soon as its veth is gone or a
// newer sandbox's, without the grace period (handout.claimRecovered).
func (s *orphanSweeper) claim(keys []datastore.Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claimed == nil {
		s.claimed = map[datastore.Key]bool{}
	}
	for _, k := range keys {
		s.claimed[k] = true
	}
}

// takeClaims returns the claimed keys and forgets those not in held.
func (s *orphanSweeper) takeClaims(held map[datastore.Key]bool) map[datastore.Key]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.claimed {
		if !held[k] {
			delete(s.claimed, k)
		}
	}
	return maps.Clone(s.claimed)
}

// liveness lists the host links at the moment of the restore (after the
// socket serves, so a DEL refused earlier has had its veth removed) and
// says whether a restored allocation's pod still has its veth. Without a
// PodLinks, or when the links cannot be listed, every pod is kept and the
// orphan sweep judges them later.
func (s *orphanSweeper) liveness(ctx context.Context) func(datastore.Allocation) bool {
	if s.links == nil {
		return nil
	}
	suffixes, err := s.links.LinkSuffixes(ctx)
	if err != nil {
		s.log.Warn("cannot list host links; keeping every restored pod until the orphan sweep", "err", err)
		return nil
	}
	return func(a datastore.Allocation) bool {
		sfx := podLinkSuffix(a)
		_, ok := suffixes[sfx]
		return sfx == "" || ok
	}
}

// run sweeps every OrphanSweep until ctx ends.
func (s *orphanSweeper) run(ctx context.Context) {
	if s.links == nil {
		return
	}
	every(ctx, s.every, func(ctx context.Context) {
		if err := s.sweep(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("orphaned-allocation sweep failed", "err", err)
		}
	})
}

// orphanDecision says whether an allocation is released now: its veth has
// been absent at every sweep since firstAbsent, for at least grace, and
// the allocation itself is older than grace (a new pod's veth may not
// exist yet).
func orphanDecision(a datastore.Assignment, present bool, firstAbsent, now time.Time, grace time.Duration) (release bool) {
	if present || firstAbsent.IsZero() {
		return false
	}
	return now.Sub(firstAbsent) >= grace && now.Sub(a.AssignedAt) >= grace
}

// sweep releases allocations whose pod's host veth has been absent
// for the grace period.
func (s *orphanSweeper) sweep(ctx context.Context, now time.Time) error {
	if s.absentSince == nil {
		s.absentSince = map[datastore.Key]time.Time{}
	}
	suffixes, err := s.links.LinkSuffixes(ctx)
	if err != nil {
		return fmt.Errorf("listing host links: %w", err)
	}
	cards := s.cards.all()
	held := make([][]datastore.Assignment, len(cards))
	for i, c := range cards {
		held[i] = c.store.AllocatedIPs()
	}
	routes := s.hostRoutes(ctx)
	owners := vethOwners(held, routes)
	for _, c := range cards {
		c.releaseStrayPrefixes(ctx, routes)
	}
	all := map[datastore.Key]bool{}
	for _, card := range held {
		for _, a := range card {
			all[a.Key] = true
		}
	}
	claimed := s.takeClaims(all)
	seen := map[datastore.Key]bool{}
	var errs []error
	released := 0
	for i, c := range cards {
		for _, a := range held[i] {
			sfx := podLinkSuffix(datastore.Allocation{Key: a.Key, Meta: a.Meta})
			if sfx == "" {
				continue
			}
			seen[a.Key] = true
			// Any link of the name that vouches for a keeps it: a
			// sandbox whose marked veth exists still runs.
			present := slices.ContainsFunc(suffixes[sfx], func(alias string) bool { return owners.owns(i, sfx, alias, a) })
			if present {
				delete(s.absentSince, a.Key)
				continue
			}
			first, ok := s.absentSince[a.Key]
			if !ok {
				first = now
				s.absentSince[a.Key] = now
			}
			// A DEL named the pod of a claimed address: its veth gone is
			// enough, no grace.
			if !claimed[a.Key] && (!ok || !orphanDecision(a, present, first, now, s.grace)) {
				continue
			}
			if err := s.release(ctx, c, a, now.Sub(first), claimed[a.Key]); err != nil {
				errs = append(errs, err)
				continue
			}
			released++
		}
	}
	for k := range s.absentSince {
		if !seen[k] {
			delete(s.absentSince, k) // released by a DEL, or released here
		}
	}
	if released > 0 {
		s.released()
	}
	return errors.Join(errs...)
}

// hostRoutes maps each address the host routes through a pod veth to
// that veth's name suffix: one dump per sweep. Nil when the routes cannot
// be listed (unmarked veths are then judged by age alone).
func (s *orphanSweeper) hostRoutes(ctx context.Context) map[netip.Addr]string {
	routes, err := s.links.PodRoutes(ctx)
	if err != nil {
		s.log.Debug("cannot list the host routes to pods; judging unmarked pod veths by age", "err", err)
		return nil
	}
	out := make(map[netip.Addr]string, len(routes))
	for _, r := range routes {
		if len(r.Link) >= vethname.SuffixLen {
			out[r.Addr] = r.Link[len(r.Link)-vethname.SuffixLen:]
		}
	}
	return out
}

// A pod's host veth is named after the pod, not the sandbox, so which of
// the pod's allocations a veth stands for is decided per veth:
//   - a veth our plugin made carries its sandbox's mark
//     (podnet.SandboxMark): an allocation is the veth's when its sandbox's
//     mark is the veth's. An address recovered from the host (its sandbox
//     unknown) is the veth's unless the marked sandbox holds an address of
//     its own that competes with it (as below): the veth has been replaced
//     since the recovery.
//   - an unmarked veth (upstream's plugin, or ours before the mark) through
//     which the host routes the address of one of the pod's sandboxes (the
//     plugin's /32 route <pod IP> dev <host veth>) is that sandbox's: a
//     newer sandbox whose ADD failed before it replaced the veth (its DEL
//     lost) holds an address no route leads to, and is the orphan.
//   - an unmarked veth without such a route is taken
//     to be the sandbox assigned last: kubelet stops a pod's sandbox before
//     it starts the next, whose ADD replaces the veth (the old one's DEL
//     may have reached no ipamd). A recovered address competes with the
//     single-NIC allocations on every card (they spill past a full card
//     0), but with a multi-NIC pod's only on its own card: one on another
//     card is the same pod's other interface (a multi-NIC pod with one
//     card recovered), not a newer sandbox, which would hold an address on
//     the recovered one's card too.

// vethOwner is the sandbox assigned last among those judged by one veth.
type vethOwner struct {
	container string
	at        time.Time
	tied      bool // another sandbox was assigned at the same instant
}

// cardVeth names a veth as seen from one card's allocations.
type cardVeth struct {
	card int
	veth string
}

// cardOwners are, for one card and one veth, the newest address recovered
// there and the sandboxes that compete with it.
type cardOwners struct {
	recovered time.Time            // the newest address recovered from the veth
	sandboxes map[string]time.Time // each competing sandbox's newest assignment
}

// vethOwnerSet is what a sweep knows of who may own each pod veth.
type vethOwnerSet struct {
	newest map[string]vethOwner // per veth, over every card; recovered addresses aside
	onCard map[cardVeth]cardOwners
	// routed: per veth, the sandboxes one of whose addresses the host
	// routes through it.
	routed map[string]map[string]bool
}

// vethOwners gathers the candidate owners of every pod veth from the
// cards' allocations (held[i] is card i's) and the host routes to pods
// (address → veth suffix; nil: unknown). A multi-NIC pod's allocations
// on several cards share their container id.
func vethOwners(held [][]datastore.Assignment, routes map[netip.Addr]string) vethOwnerSet {
	o := vethOwnerSet{newest: map[string]vethOwner{}, onCard: map[cardVeth]cardOwners{}, routed: map[string]map[string]bool{}}
	for i, card := range held {
		for _, a := range card {
			sfx := podLinkSuffix(datastore.Allocation{Key: a.Key, Meta: a.Meta})
			if sfx == "" {
				continue
			}
			if via, ok := routes[a.Addr]; ok && via == sfx && a.Key.NetworkName != datastore.RecoveredNetworkName {
				if o.routed[sfx] == nil {
					o.routed[sfx] = map[string]bool{}
				}
				o.routed[sfx][a.Key.ContainerID] = true
			}
			if a.Key.NetworkName == datastore.RecoveredNetworkName {
				co := o.onCard[cardVeth{i, sfx}]
				if a.AssignedAt.After(co.recovered) {
					co.recovered = a.AssignedAt
				}
				o.onCard[cardVeth{i, sfx}] = co
				continue
			}
			o.noteNewest(sfx, a)
			if a.Meta.InterfacesCount > 1 {
				o.noteOnCard(i, sfx, a)
			} else {
				// A single-NIC pod's one address may be on any card (it
				// spills past a full card 0): it competes with an address
				// recovered from its veth on every card.
				for j := range held {
					o.noteOnCard(j, sfx, a)
				}
			}
			if a.Meta.InterfacesCount > 1 && i > 0 {
				// A multi-NIC pod's address on the i-th card is routed
				// through its interface i's veth ("<ns>.<pod>.<i>"), by
				// whose name (without a prefix: the suffix) an address
				// recovered there is keyed.
				o.noteOnCard(i, vethname.HostVethName("", a.Meta.K8sPodNamespace, a.Meta.K8sPodName, i), a)
			}
		}
	}
	return o
}

// noteNewest counts a as a candidate owner of the veth named by sfx.
func (o vethOwnerSet) noteNewest(sfx string, a datastore.Assignment) {
	w, ok := o.newest[sfx]
	switch {
	case !ok || a.AssignedAt.After(w.at):
		o.newest[sfx] = vethOwner{container: a.Key.ContainerID, at: a.AssignedAt}
	case a.AssignedAt.Equal(w.at) && a.Key.ContainerID != w.container:
		w.tied = true
		o.newest[sfx] = w
	}
}

// noteOnCard records a's sandbox among card's allocations judged by sfx.
func (o vethOwnerSet) noteOnCard(card int, sfx string, a datastore.Assignment) {
	co := o.onCard[cardVeth{card, sfx}]
	if co.sandboxes == nil {
		co.sandboxes = map[string]time.Time{}
	}
	if at, ok := co.sandboxes[a.Key.ContainerID]; !ok || a.AssignedAt.After(at) {
		co.sandboxes[a.Key.ContainerID] = a.AssignedAt
	}
	o.onCard[cardVeth{card, sfx}] = co
}

// owns reports whether a, held on card, is the allocation of the sandbox
// whose veth is named by sfx and carries alias. When two sandboxes were
// assigned at the same instant neither is judged by age.
func (o vethOwnerSet) owns(card int, sfx, alias string, a datastore.Assignment) bool {
	co := o.onCard[cardVeth{card, sfx}]
	recovered := a.Key.NetworkName == datastore.RecoveredNetworkName
	switch {
	case podnet.IsSandboxMark(alias) && !recovered:
		return alias == podnet.SandboxMark(a.Key.ContainerID)
	case podnet.IsSandboxMark(alias):
		for c := range co.sandboxes {
			if podnet.SandboxMark(c) == alias {
				return false
			}
		}
		return true
	case recovered:
		for _, at := range co.sandboxes {
			if at.After(a.AssignedAt) {
				return false
			}
		}
		return true
	}
	if r := o.routed[sfx]; len(r) > 0 {
		return r[a.Key.ContainerID]
	}
	if co.recovered.After(a.AssignedAt) {
		return false
	}
	w, ok := o.newest[sfx]
	return !ok || w.tied || w.container == a.Key.ContainerID
}

// release releases one allocation whose pod is gone, as a DEL would
// (delSeen: one did, for an address recovered from the host, and left the
// release to the sweep: no orphan then).
func (s *orphanSweeper) release(ctx context.Context, c *poolManager, a datastore.Assignment, absent time.Duration, delSeen bool) error {
	got, err := c.store.UnassignAddr(a.Key, a.Addr)
	switch {
	case errors.Is(err, datastore.ErrUnknownPod):
		return nil // a DEL came first, or the key holds another address now
	case errors.Is(err, datastore.ErrCheckpoint):
		s.log.Warn("orphaned address released but the checkpoint write failed", "key", a.Key.String(), "err", err)
	case err != nil:
		return fmt.Errorf("releasing the orphaned address of %s: %w", a.Key, err)
	}
	if delSeen {
		s.log.Info("released an address recovered from the host after its pod's DEL, now that the veth is gone or a newer sandbox's",
			"key", a.Key.String(), "ip", got.Addr, "card", c.index)
	} else {
		s.count.Inc()
		s.log.Warn("released the address of a sandbox whose host veth is gone or now a newer sandbox's (a DEL that never reached ipamd)",
			"pod", a.Meta.K8sPodNamespace+"/"+a.Meta.K8sPodName, "key", a.Key.String(), "ip", got.Addr,
			"card", c.index, "absentFor", absent.Round(time.Millisecond))
	}
	if err := s.host.DeletePodRules(ctx, got.Addr); err != nil {
		s.log.Warn("could not delete the ip rules of an orphaned pod", "ip", got.Addr, "err", err)
	}
	return nil
}
