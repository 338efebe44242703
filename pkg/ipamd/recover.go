package ipamd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// A checkpoint that cannot be read is moved aside and the card's pods are
// recovered from the host routes to their veths: refusing to start would
// crash-loop the node with no way forward (docs/compatibility.md, "ipamd:
// checkpoint, logs and readiness").

// restorer restores each card's checkpoint at start (with the restored
// pods' rules) and, after PendingWait, drops the pending allocations no
// CIDR took back whose pods are gone. It owns no state: the
// cards' datastores lock themselves.
type restorer struct {
	backingStore string
	links        PodLinks // nil: no host routes to recover pods from
	host         HostNetwork
	cards        *cardSet
	dropped      *prometheus.CounterVec // vpccni_checkpoint_entries_dropped_total{reason}
	pendingWait  time.Duration
	log          *slog.Logger
}

// restoreAll restores every card's checkpoint at start (live tells which
// pods' veths still exist), re-creates the restored pods' rules and
// deletes the stale pods' ones.
func (r *restorer) restoreAll(ctx context.Context, live func(datastore.Allocation) bool) error {
	for _, c := range r.cards.all() {
		res, err := r.restoreCard(ctx, c, live)
		if err != nil {
			return fmt.Errorf("restoring the checkpoint of network card %d: %w", c.index, err)
		}
		r.log.Info("checkpoint restored", "card", c.index, "restored", len(res.Restored),
			"stale", len(res.Stale), "unknownCIDR", len(res.Unknown), "keyLess", len(res.KeyLess), "clampedTimestamps", res.Clamped)
		for _, a := range res.KeyLess {
			r.dropped.WithLabelValues("key_less").Inc()
			r.log.Warn("dropped a checkpoint allocation with an empty key field (no DEL could ever release it)",
				"card", c.index, "key", a.Key.String(), "ip", a.Addr, "pod", a.Meta.K8sPodNamespace+"/"+a.Meta.K8sPodName)
		}
		if res.Clamped > 0 {
			r.log.Warn("checkpoint timestamps in the future set to now", "card", c.index, "count", res.Clamped)
		}
		if len(res.Unknown) > 0 {
			r.log.Warn("restored allocations on no known CIDR: kept pending until their CIDR appears or the wait ends",
				"card", c.index, "count", len(res.Unknown), "first", allocationList(res.Unknown, 20), "wait", r.pendingWait)
		}
		if strays := c.keepStraysHolding(res); len(strays) > 0 {
			r.log.Info("custom networking: pods restored on the primary ENI's prefixes, which are released once those pods are gone",
				"card", c.index, "prefixes", strays)
		}
		r.restorePodRules(ctx, c, res.Restored)
		if len(res.Stale) > 0 {
			stale := make([]netip.Addr, len(res.Stale))
			for i, a := range res.Stale {
				stale[i] = a.Addr
			}
			if err := r.host.DeletePodRules(ctx, stale...); err != nil {
				r.log.Warn("could not delete the ip rules of stale pods", "card", c.index, "err", err)
			}
		}
	}
	r.cards.settlePending(r.log, true)
	return nil
}

// restoreCard restores card c's checkpoint, or recovers from the host when
// it cannot be read. It fails only when the recovered state cannot be
// written either.
func (r *restorer) restoreCard(ctx context.Context, c *poolManager, live func(datastore.Allocation) bool) (datastore.RestoreResult, error) {
	res, err := c.store.Load(live)
	switch {
	case err == nil:
		return res, nil
	case !errors.Is(err, datastore.ErrUnreadable):
		// Read and restored; only writing it back failed, which moving a
		// good file aside would not cure. Start: health says NOT_SERVING
		// until the write succeeds (the probe retries it).
		r.log.Error("checkpoint restored but cannot be written; serving NOT_SERVING until it can",
			"card", c.index, "err", err)
		return res, nil
	}
	path := datastore.CheckpointPath(r.backingStore, c.index)
	aside := fmt.Sprintf("%s.corrupt-%s", path, time.Now().UTC().Format("20060102T150405Z"))
	if rerr := os.Rename(path, aside); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
		r.log.Error("checkpoint unreadable and cannot be moved aside; recovering from the host anyway",
			"card", c.index, "path", path, "err", err, "renameErr", rerr)
	} else {
		r.log.Error("checkpoint unreadable: moved aside; recovering pods from the host's routes",
			"card", c.index, "path", path, "movedTo", aside, "err", err)
	}
	r.dropped.WithLabelValues("corrupt_checkpoint").Inc()
	return r.recoverFromHost(ctx, c)
}

// recoverFromHost holds again every address of card c that a host route
// sends to a pod veth. What cannot be recovered is logged: the pods' names
// and container ids (a DEL naming the pod finds a recovered address by the
// veth name its pod hashes to, and leaves its release to the orphan sweep:
// handout.claimRecovered), cooldowns, and routes outside the card's
// addresses.
func (r *restorer) recoverFromHost(ctx context.Context, c *poolManager) (datastore.RestoreResult, error) {
	if r.links == nil {
		r.log.Warn("no host links to recover pods from (host networking disabled): starting from EC2 alone", "card", c.index)
		return datastore.RestoreResult{}, r.persistFresh(c)
	}
	routes, err := r.links.PodRoutes(ctx)
	if err != nil {
		r.log.Error("cannot list the host's pod routes: starting from EC2 alone; pods keep running but their addresses may be handed out again",
			"card", c.index, "err", err)
		return datastore.RestoreResult{}, r.persistFresh(c)
	}
	f := datastore.File{Version: datastore.CheckpointVersion}
	var recovered, outside []string
	seen := map[string]bool{}
	for _, r := range routes {
		if !cardHolds(c, r.Addr) {
			outside = append(outside, r.Addr.String()+" dev "+r.Link)
			continue
		}
		if len(r.Link) < vethname.SuffixLen {
			outside = append(outside, r.Addr.String()+" dev "+r.Link)
			continue
		}
		suffix := r.Link[len(r.Link)-vethname.SuffixLen:]
		if seen[suffix] || seen[r.Addr.String()] {
			continue // a multi-address pod: its first address is enough to hold the veth's key
		}
		seen[suffix], seen[r.Addr.String()] = true, true
		f.Allocations = append(f.Allocations, datastore.Allocation{Key: datastore.RecoveredKey(suffix), Addr: r.Addr,
			AssignedAt: time.Now(), Meta: datastore.Metadata{InterfacesCount: 1}})
		recovered = append(recovered, r.Addr.String()+" dev "+r.Link)
	}
	res, err := c.store.Restore(f, nil)
	if err != nil {
		return res, fmt.Errorf("recovering card %d from the host: %w", c.index, err)
	}
	r.log.Warn("recovered pods from the host after a corrupt checkpoint", "card", c.index,
		"recovered", len(recovered), "addresses", strings.Join(recovered, ", "),
		"notRecovered", "pod names, container ids and cooldowns of every pod; a DEL naming the pod marks its address, released once its veth is gone",
		"skippedRoutes", strings.Join(outside, ", "))
	return res, nil
}

// cardHolds reports whether addr lies in one of card c's CIDRs.
func cardHolds(c *poolManager, addr netip.Addr) bool {
	for _, e := range c.store.ENIs() {
		for _, ci := range e.CIDRs {
			if ci.Prefix.Contains(addr) {
				return true
			}
		}
	}
	return false
}

// persistFresh writes the card's (empty) state over the unreadable file.
func (r *restorer) persistFresh(c *poolManager) error {
	if err := c.store.Persist(); err != nil {
		return fmt.Errorf("writing a fresh checkpoint for card %d: %w", c.index, err)
	}
	return nil
}

// restorePodRules leaves the restored pods the rules a fresh ADD would:
// each its to-pod rule, and its from-pod rule to its ENI's table
// (docs/compatibility.md, "Rule priorities, route tables and gateways": a
// restart may follow a reboot or a flush of the rules), in one call that
// lists the kernel's rules once. Pods on the primary ENI use the main
// table and have no from-pod rule: any they still carry is deleted, since
// it names the table of an ENI the address has left and misroutes the pod
// once that table is reused.
func (r *restorer) restorePodRules(ctx context.Context, c *poolManager, restored []datastore.Allocation) {
	pods := make([]networkutils.PodRule, 0, len(restored))
	for _, a := range restored {
		if asg, ok := c.store.Lookup(a.Key); ok {
			pods = append(pods, networkutils.PodRule{IP: a.Addr, Table: asg.RouteTableID})
		}
	}
	if len(pods) == 0 {
		return
	}
	if err := r.host.RestorePodRules(ctx, pods); err != nil {
		r.log.Warn("could not restore the ip rules of every restored pod", "card", c.index, "pods", len(pods), "err", err)
	}
}

// dropPendingAfter waits, then forgets pending allocations whose address
// is still in no CIDR of the node, unless their pod still runs: the
// reconciles in between have had every chance to bring their CIDR back,
// and keeping them costs memory and a larger checkpoint on every write.
func (r *restorer) dropPendingAfter(ctx context.Context) {
	select {
	case <-ctx.Done():
		return
	case <-time.After(r.pendingWait):
	}
	r.dropPending(ctx)
}

// dropPending forgets every card's pending allocations but those of pods
// whose host veth exists, and logs them. Such a pod still holds its
// address, which EC2 may hand the node again (datastore quarantine.go):
// it stays until its DEL, or until the orphan sweep sees its veth gone.
func (r *restorer) dropPending(ctx context.Context) {
	keep := r.podStillRuns(ctx)
	for _, c := range r.cards.all() {
		dropped, err := c.store.DropPending(keep)
		if err != nil {
			r.log.Warn("dropped pending allocations but the checkpoint write failed", "card", c.index, "err", err)
		}
		if kept := c.store.Pending(); len(kept) > 0 {
			r.log.Info("kept pending allocations whose pod's host veth exists: their addresses go to no other pod until the pod's DEL",
				"card", c.index, "count", len(kept), "first", allocationList(kept, 20))
		}
		if len(dropped) == 0 {
			continue
		}
		r.dropped.WithLabelValues("unknown_cidr").Add(float64(len(dropped)))
		r.log.Warn("dropped restored allocations whose address is on no ENI of this node", "card", c.index,
			"count", len(dropped), "first", allocationList(dropped, 20))
	}
}

// podStillRuns says whether an allocation's pod has its host veth. Nil
// (keep none) without PodLinks, which leaves nothing to tell by; when the
// links cannot be listed every pod is taken to run.
func (r *restorer) podStillRuns(ctx context.Context) func(datastore.Allocation) bool {
	if r.links == nil {
		return nil
	}
	suffixes, err := r.links.LinkSuffixes(ctx)
	if err != nil {
		r.log.Warn("cannot list host links; keeping every pending allocation", "err", err)
		return func(datastore.Allocation) bool { return true }
	}
	return func(a datastore.Allocation) bool {
		sfx := podLinkSuffix(a)
		_, ok := suffixes[sfx]
		return sfx != "" && ok
	}
}

// allocationList renders up to max allocations for a log line.
func allocationList(as []datastore.Allocation, limit int) string {
	var b strings.Builder
	for i, a := range as {
		if i == limit {
			fmt.Fprintf(&b, ", … %d more", len(as)-limit)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%s", a.Key, a.Addr)
	}
	return b.String()
}
