package ipamd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/pool"
	"github.com/vpc-cni/vpc-cni/pkg/metrics"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
)

// Errors of the address hand-out; the gRPC door maps them to status codes.
var (
	// ErrNoAddress: no address came before the request's deadline, or
	// none can come (every card at its hard limit). The message names why.
	ErrNoAddress = errors.New("no IP address available")
	// ErrShuttingDown: ipamd is terminating with no free address.
	ErrShuttingDown = errors.New("ipamd is shutting down and has no free address; retry on the next ipamd")
)

// noAddressError is ErrNoAddress with its cause.
type noAddressError struct{ msg string }

func (e *noAddressError) Error() string        { return e.msg }
func (e *noAddressError) Is(target error) bool { return target == ErrNoAddress }

// handout is the wait for an address, in one place: how many AddNetwork
// calls wait (the planner counts them as demand), the signal that wakes
// them when an address may have become usable (the pool grew, a pod
// released one, a reconcile adopted one), and the signal that tells them
// a pool cycle found every card at its hard limit.
//
// It hands out and takes back addresses on the cards' datastores (which
// lock themselves); pending is the only state it owns besides the signals.
type handout struct {
	pending atomic.Int64
	// trying counts the calls between their wake-up and the end of their
	// try for an address: counted neither as waiting nor, yet, in the
	// datastore (pool.Params.Trying).
	trying  atomic.Int64
	changed *signal
	limited *signal

	cfg         config.Config
	node        *nodeState
	cards       *cardSet // the managed cards, built by Init before it serves
	pool        *trigger
	terminating *latch
	observe     *observer
	m           *metrics.Metrics
	kube        *kubeRef
	host        HostNetwork
	addWait     time.Duration
	// track shows the EC2 calls in flight, named in an ADD's failure
	// (nil: none named).
	track *introspect.Tracker
	// claim marks recovered keys a DEL named for the orphan sweep (nil:
	// no sweep, such an address is never released by a DEL).
	claim func([]datastore.Key)
	log   *slog.Logger
	// missed (tests only; nil in ipamd) runs after an assign found no
	// address, before the hard limit is read: the window in which the
	// pool's last growth or a DEL can land.
	missed func()
	// taking (tests only; nil in ipamd) runs when a call is about to try
	// for an address: no longer counted as waiting, not yet in the store.
	taking func()
}

// waiting is the number of AddNetwork calls waiting for an address (the
// planner's demand; vpccni_add_network_waiting shows it).
func (h *handout) waiting() int { return int(h.pending.Load()) }

// tryingNow is the number of AddNetwork calls trying for an address now.
func (h *handout) tryingNow() int { return int(h.trying.Load()) }

// wake retries every waiting AddNetwork.
func (h *handout) wake() { h.changed.broadcast() }

// AssignPod hands k an address: one on the first card that has one, or
// one on every card for a multi-NIC pod. On an empty pool it asks the pool
// manager for more at once and waits until the answer is due, instead of
// failing; it fails at once when no address can come. Errors:
// ErrNoAddress, ErrShuttingDown, or a datastore failure.
func (h *handout) AssignPod(d *due, k datastore.Key, meta datastore.Metadata, multi bool) ([]datastore.Assignment, error) {
	start := time.Now()
	meta.InterfacesCount = 1
	if multi {
		meta.InterfacesCount = len(h.cards.all())
	}
	waited := false
	result := "error"
	// demand counts the call among the waiting ADDs (the planner's demand)
	// while it waits, and not while it tries to assign: an address it takes
	// is in the datastore's counts at once, but the assignment returns only
	// after the checkpoint's sync, and a pool cycle planning meanwhile
	// would count the call twice and ask EC2 for one address too many
	// (TestWaitersGetOneAssign, with a slow sync).
	counted := false
	demand := func(on bool) {
		if on == counted {
			return
		}
		counted = on
		if on {
			h.pending.Add(1)
			h.m.AddWaiting.Inc()
		} else {
			h.pending.Add(-1)
			h.m.AddWaiting.Dec()
		}
	}
	defer func() {
		demand(false)
		h.m.AddNetworkWait.WithLabelValues(result).Observe(time.Since(start).Seconds())
	}()
	deadline := d.at
	fire, toldCooldown, rechecked := true, false, false
	for {
		changed, limited := h.changed.wait(), h.limited.wait()
		h.trying.Add(1) // before demand drops: the call is always in one count or the other
		demand(false)
		if h.taking != nil {
			h.taking()
		}
		asgs, err := h.assign(k, meta, multi)
		if err == nil || !errors.Is(err, datastore.ErrNoAvailableAddress) {
			h.trying.Add(-1) // taken (in the store's counts now), or failed
		}
		if err == nil {
			if waited {
				h.log.Info("address handed out after waiting for the pool", "key", k.String(), "waited", time.Since(start))
			}
			result = "ok"
			h.observe.assignments(asgs)
			h.nudgePool()
			h.annotate(d, meta.K8sPodNamespace, meta.K8sPodName, asgs[0].Addr, true)
			return asgs, nil
		}
		if !errors.Is(err, datastore.ErrNoAvailableAddress) {
			return nil, fmt.Errorf("assigning an address to %s: %w", k, err)
		}
		waited = true
		demand(true)
		h.trying.Add(-1) // a miss counts as waiting again first
		if h.missed != nil {
			h.missed()
		}
		limit, usable := h.nothingComing(deadline)
		if !usable.IsZero() && !toldCooldown {
			// At the hard limit only a cooldown can serve this ADD: say so,
			// so that a long wait in the plugin's timing is explained here.
			toldCooldown = true
			h.log.Info("ADD waits for a cooling address: node at its hard limit", "key", k.String(),
				"usable_at", usable, "wait", time.Until(usable).Round(time.Millisecond))
		}
		if limit != "" && !rechecked {
			// The limit may be newer than the miss above: the pool's last
			// growth (its last ENI wired, after which the cycle finds every
			// slot taken) or a DEL can land in between, and the limit then
			// counts addresses this ADD never tried. They are in the store
			// before the limit is recorded, so one more try after reading
			// it tells a full node from a late miss
			// (TestLastENIWiredAfterMissServesADD).
			rechecked = true
			continue
		}
		if limit != "" {
			// No refill can come and no cooldown ends in time: fail now
			// and let kubelet retry, as upstream does (docs/compatibility.md,
			// "Deliberate differences").
			result = "exhausted"
			h.m.NoAvailableIPs.Inc()
			return nil, &noAddressError{h.exhaustedCause(err, time.Since(start)) + "; node at its hard limit: " + limit}
		}
		// After the pool found the limit it need not run again, unless a
		// card has room by now (usable is zero): a DEL that landed since
		// made room under max pods and its wake-up was spent before this
		// loop took the next one.
		if fire || usable.IsZero() {
			h.pool.Fire()
		}
		fire, rechecked = true, false
		switch h.waitForAddress(d.context(), changed, limited) {
		case waitLimit:
			fire = false // the pool just ran and found no room
		case waitRetry:
		case waitShutdown:
			// The pool will not grow any more: answer now so the drain is quick.
			demand(false)
			if asgs, err := h.assign(k, meta, multi); err == nil {
				result = "ok"
				h.observe.assignments(asgs)
				return asgs, nil
			}
			result = "shutdown"
			h.m.NoAvailableIPs.Inc()
			return nil, ErrShuttingDown
		case waitDeadline:
			result = "exhausted"
			h.m.NoAvailableIPs.Inc()
			return nil, &noAddressError{h.exhaustedCause(err, time.Since(start))}
		}
	}
}

type waitOutcome int

const (
	waitRetry    waitOutcome = iota // something changed: try to assign again
	waitLimit                       // the pool found every card at its hard limit
	waitShutdown                    // ipamd is terminating
	waitDeadline                    // the request's time is up
)

// waitForAddress blocks until an address may have become usable: the pool
// grew or an address was released (changed), or the earliest cooldown
// ended (a timer on exactly that moment, not a poll).
func (h *handout) waitForAddress(ctx context.Context, changed, limited <-chan struct{}) waitOutcome {
	var wake <-chan time.Time
	if at, ok := h.cards.nextCoolingEnd(); ok {
		t := time.NewTimer(time.Until(at))
		defer t.Stop()
		wake = t.C
	}
	select {
	case <-changed:
		return waitRetry
	case <-limited:
		return waitLimit
	case <-wake:
		return waitRetry
	case <-h.terminating.done():
		return waitShutdown
	case <-ctx.Done():
		return waitDeadline
	}
}

// nudgePool starts a pool cycle at once when card 0 is below its warm
// target after an assignment and can still grow, so the refill begins now
// rather than at the next tick (a burst's later pods then find addresses).
// A starved card is left to the tick: each cycle asks the API server for
// the node's taints.
func (h *handout) nudgePool() {
	c, ok := h.cards.first()
	if h.cfg.EnableIPv6 || !ok {
		return
	}
	want := nudgeWant(&h.cfg, h.node.typ.IPv4PerENI, c.store.Mode() == datastore.ModePrefixIPv4)
	if c.store.Stats().AvailableIPs >= want {
		return
	}
	if starved, _ := c.state(); starved == "" {
		h.pool.Fire()
	}
}

// nudgeWant is how many available addresses card 0 should keep for the
// warm targets. Each target is bounded by pool.MaxTarget as the planner
// bounds it: a huge WARM_ENI_TARGET or WARM_PREFIX_TARGET would otherwise
// wrap the product around to "nothing wanted".
func nudgeWant(cfg *config.Config, ipv4PerENI int, prefixes bool) int {
	switch {
	case cfg.WarmIPTarget > 0 || cfg.MinimumIPTarget > 0:
		return min(cfg.WarmIPTarget, pool.MaxTarget)
	case prefixes:
		return min(cfg.WarmPrefixTarget, pool.MaxTarget) * 16
	}
	return min(cfg.WarmENITarget, pool.MaxTarget) * max(ipv4PerENI-1, 0)
}

// nothingComing names the hard limit when no address can come before
// deadline: every card is at its hard limit (as the last pool cycle found)
// and no cooldown ends before deadline. "" means an address may come; with
// every card at its limit, usable is then when the next cooldown ends.
func (h *handout) nothingComing(deadline time.Time) (limit string, usable time.Time) {
	var limits []string
	for _, c := range h.cards.all() {
		l := c.fullText()
		if l == "" {
			return "", time.Time{}
		}
		limits = append(limits, l)
	}
	if len(limits) == 0 {
		return "", time.Time{}
	}
	if at, ok := h.cards.nextCoolingEnd(); ok && (deadline.IsZero() || at.Before(deadline)) {
		return "", at
	}
	return strings.Join(limits, "; "), time.Time{}
}

// assign takes one address on the first card that has one (pods spill to
// cards > 0), or one on every card for a multi-NIC pod, all or nothing.
func (h *handout) assign(k datastore.Key, meta datastore.Metadata, multi bool) ([]datastore.Assignment, error) {
	if !multi {
		// A retried ADD gets what the key already holds, on any card: pods
		// spill to cards > 0, so card 0 may have room again by now. Held,
		// not Lookup: the hold must be durable, and a pending restored
		// entry has no ENI behind it (Assign replaces it).
		for _, c := range h.cards.all() {
			a, ok, err := c.store.Held(k)
			if err != nil {
				return nil, err
			}
			if ok {
				return []datastore.Assignment{a}, nil
			}
		}
		var err error
		for _, c := range h.cards.all() {
			var a datastore.Assignment
			if a, err = c.store.Assign(k, meta); err == nil {
				return []datastore.Assignment{a}, nil
			}
			if !errors.Is(err, datastore.ErrNoAvailableAddress) {
				return nil, err
			}
		}
		return nil, err
	}
	var out []datastore.Assignment
	cards := h.cards.all()
	for _, c := range cards {
		a, err := c.store.Assign(k, meta)
		if err != nil {
			for i, done := range out {
				// Never handed to a pod: back at once, without a cooldown.
				if _, uerr := cards[i].store.Withdraw(done.Key); uerr != nil {
					h.log.Warn("could not undo a partial multi-NIC assignment", "key", k.String(), "err", uerr)
				}
			}
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// exhaustedCause names why no address came: the pool's own reason, the
// last EC2 failure, or the datastore's figures.
func (h *handout) exhaustedCause(storeErr error, waited time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s after waiting %s", ErrNoAddress, waited.Round(time.Millisecond))
	mp := h.node.maxPods.get()
	for _, c := range h.cards.all() {
		starved, lastErr := c.state()
		st := c.store.Stats()
		fmt.Fprintf(&b, "; card %d: %d addresses, %d assigned, %d cooling", c.index, st.TotalIPs, st.AssignedIPs, st.CoolingIPs)
		switch {
		case starved != "":
			b.WriteString(": " + starved)
		case lastErr != nil:
			b.WriteString(": " + causeOf(lastErr))
		case mp > 0 && st.Pods >= mp:
			fmt.Fprintf(&b, ": max pods reached (%d)", mp)
		}
	}
	var nae *datastore.NoAvailableAddressError
	if errors.As(storeErr, &nae) && nae.Reason != "" {
		b.WriteString("; datastore: " + nae.Reason)
	}
	b.WriteString(h.ec2InFlight())
	return b.String()
}

// ec2InFlight names the EC2 calls still under way, oldest first (at most
// three): a call EC2 keeps throttling stays in its retries with no
// failure recorded yet, and an ADD that runs out of time meanwhile must
// say what ipamd was waiting on, not only that every address is taken.
func (h *handout) ec2InFlight() string {
	if h.track == nil {
		return ""
	}
	var calls []introspect.Activity
	for _, a := range h.track.Current() {
		if a.Kind == awsutils.ActivityEC2 {
			calls = append(calls, a)
		}
	}
	if len(calls) == 0 {
		return ""
	}
	slices.SortFunc(calls, func(x, y introspect.Activity) int { return x.Since.Compare(y.Since) })
	var b strings.Builder
	b.WriteString("; EC2 calls still under way (throttled or slow): ")
	for i, a := range calls {
		if i == 3 {
			fmt.Fprintf(&b, ", … %d more", len(calls)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s for %s", a.What, time.Since(a.Since).Round(time.Millisecond))
	}
	return b.String()
}

// ReleasePod releases what k holds on every card and wakes waiting ADDs
// and clears the pod-ips annotation. Nothing held: none released and no
// error; an address recovered for the pod's veth after a corrupt
// checkpoint is then only marked for the orphan sweep (claimRecovered).
func (h *handout) ReleasePod(d *due, k datastore.Key, namespace, name string) ([]datastore.Assignment, error) {
	released, err := h.release(k)
	if err != nil {
		return nil, err
	}
	if len(released) == 0 && namespace != "" && name != "" {
		h.claimRecovered(k, namespace, name)
	}
	if len(released) == 0 {
		return nil, nil
	}
	h.forgetPendingRules(d, released)
	h.observe.assignments(released)
	if h.waiting() > 0 {
		h.wake() // with no cooldown the address is usable at once
	}
	h.annotate(d, namespace, name, released[0].Addr, false)
	return released, nil
}

// forgetPendingRules deletes the ip rules of released addresses that were
// pending: on no ENI of the node, their table unknown, so the reply names
// main and the plugin deletes no from-pod rule, which may still name the
// table of an ENI gone while ipamd was down and would misroute the next
// pod given the address. A card never gives its own pending address to
// another pod (datastore quarantine.go), but another card may hold it for
// a pod (a checkpoint from before the quarantine, or a move between cards
// whose write failed): the rules are then that pod's, and stay.
func (h *handout) forgetPendingRules(d *due, released []datastore.Assignment) {
	var addrs []netip.Addr
	for _, a := range released {
		if a.ENIID == "" && !h.heldElsewhere(a) {
			addrs = append(addrs, a.Addr)
		}
	}
	if len(addrs) == 0 {
		return
	}
	if err := h.host.DeletePodRules(d.context(), addrs...); err != nil {
		h.log.Warn("could not delete the ip rules of a released address that was on no ENI", "ips", addrs, "err", err)
	}
}

// heldElsewhere reports whether a card holds a's address on an ENI for a
// pod, and logs it.
func (h *handout) heldElsewhere(a datastore.Assignment) bool {
	for _, c := range h.cards.all() {
		if other, ok := c.store.HeldBy(a.Addr); ok {
			h.log.Warn("released a quarantined address another pod holds on an ENI: its rules are that pod's and stay",
				"ip", a.Addr, "releasedKey", a.Key.String(), "holderKey", other.Key.String(), "eni", other.ENIID, "card", c.index)
			return true
		}
	}
	return false
}

// claimRecovered hands the orphan sweep the addresses recovered from the
// host after a corrupt checkpoint for the pod's veths. Such an address is
// known only by the name of the veth it is routed to, which every sandbox
// of the pod shares (a multi-NIC pod's interface i > 0 has its own, named
// after "<ns>.<pod>.<i>", one per card): nothing tells whether this DEL is
// for the sandbox using it or a late one for an older sandbox, which must
// not take the running sandbox's address (the plugin would remove its
// route and rules, and the address would go to another pod). The sweep
// releases a claimed address once the veth is gone or a newer sandbox's.
func (h *handout) claimRecovered(k datastore.Key, namespace, name string) {
	if h.claim == nil {
		return
	}
	var keys []datastore.Key
	for i := range max(len(h.cards.all()), 1) {
		// Without a prefix the name is the suffix recovered keys carry.
		rk := datastore.RecoveredKey(vethname.HostVethName("", namespace, name, i))
		for _, c := range h.cards.all() {
			if _, ok := c.store.Lookup(rk); ok {
				keys = append(keys, rk)
				break
			}
		}
	}
	if len(keys) == 0 {
		return
	}
	h.claim(keys)
	h.log.Info("DEL of a pod whose address was recovered from the host after a corrupt checkpoint: released once its veth is gone",
		"key", k.String(), "pod", namespace+"/"+name, "recovered", len(keys))
}

// release unassigns what k holds on every card.
func (h *handout) release(k datastore.Key) ([]datastore.Assignment, error) {
	var released []datastore.Assignment
	for _, c := range h.cards.all() {
		// Store.Unassign also matches entries upstream migrated from CRI
		// state (placeholder network and interface) by container id.
		a, err := c.store.Unassign(k)
		switch {
		case errors.Is(err, datastore.ErrUnknownPod):
			continue
		case errors.Is(err, datastore.ErrCheckpoint):
			// The release happened; only persisting it failed, and the next
			// good write persists it. Failing the DEL would strand the address.
			h.log.Warn("address released but the checkpoint write failed", "key", k.String(), "ip", a.Addr,
				"card", c.index, "err", err)
		case err != nil:
			return released, fmt.Errorf("releasing the address of %s: %w", k, err)
		}
		released = append(released, a)
	}
	return oneCopyEach(released), nil
}

// oneCopyEach drops the pending copy of an address also released on an
// ENI: a pod whose quarantined address moved to another card, when the
// checkpoint write of the move failed, is kept by both cards until its
// DEL (datastore othercards.go). It is one interface of the pod, whose
// table is the ENI's; a second entry would read as a second interface.
func oneCopyEach(released []datastore.Assignment) []datastore.Assignment {
	onENI := map[netip.Addr]bool{}
	for _, a := range released {
		if a.ENIID != "" {
			onENI[a.Addr] = true
		}
	}
	out := released[:0]
	for _, a := range released {
		if a.ENIID != "" || !onENI[a.Addr] {
			out = append(out, a)
		}
	}
	return out
}

// annotate maintains vpc.amazonaws.com/pod-ips (ANNOTATE_POD_IP). A failure
// is logged: the pod's network works without the annotation.
func (h *handout) annotate(d *due, ns, name string, addr netip.Addr, add bool) {
	if !h.cfg.AnnotatePodIP || name == "" {
		return
	}
	var err error
	ip := addr.String()
	if add {
		err = h.kube.get().AnnotatePodIP(d.context(), ns, name, ip)
	} else {
		err = h.kube.get().ClearPodIP(d.context(), ns, name, ip)
	}
	if err != nil {
		h.log.Warn("could not update the pod-ips annotation", "pod", ns+"/"+name, "ip", ip, "add", add, "err", err)
	}
}
