package ipamd

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/pool"
)

// poolManager is one managed network card's pool and the one owner of its
// state: the card's datastore (which locks itself), the ENIs it must count
// but does not manage, its cooldowns and back-off, and why it cannot grow.
// It plans with package pool (pure) and executes the actions it planned
// (engine.go, eni.go).
//
// Invariant: the card's ENIs and CIDRs (in EC2 and in its datastore) change
// only through its pool manager's actions or the reconcile, both under
// IPAM.changes, or through Init's adoption before the node is ready;
// AddNetwork, DelNetwork and the orphan sweep only assign and unassign
// addresses in the datastore (the sweep also gives back stray primary-ENI
// prefixes, which are in no datastore: strayprefix.go). index, store,
// maxENIs and env never change;
// pd and askDevice carry their own lock; mu guards the rest.
type poolManager struct {
	index   int
	store   *datastore.Store
	maxENIs int
	env     *poolEnv
	track   *introspect.Tracker
	backoff time.Duration // first pause after a failed action of a kind, doubling to 1 min
	cool    time.Duration // no growth this long after a subnet-full error
	pd      guarded[bool] // prefix delegation; false after an InsufficientCidrBlocks fallback
	wantPD  bool          // prefix delegation in effect at start (resumePrefixes goes back to it)
	// askDevice: after a failed allocation, let awsutils find a free device
	// index with DescribeInstances instead of trusting ipamd's own view.
	askDevice guarded[bool]

	mu        sync.Mutex
	unmanaged map[string]int // unmanaged ENIs attached on this card → device index
	// unfreed: ENIs out of the store that could not be detached (a failed
	// free or undo) → device index. They still take a device and count
	// against the ENI limit until retryUnfreed frees them or reconcile
	// adopts them again.
	unfreed map[string]int
	// detachLooks and detachLookAt space retryUnfreed's looks at ENIs
	// EC2 is still detaching (detachLookDue).
	detachLooks  int
	detachLookAt time.Time
	starved      string // why the pool cannot grow ("" when it can)
	full         string // the hard limit the card is at ("" when it can grow at all)
	fullMaxPods  bool   // full is max pods, which a DEL can lift (fullText)
	lastErr      error  // last failed EC2 action
	lastRelease  time.Time
	insufficient time.Time // no growth before this time
	insuffCode   string    // the EC2 code that started the cooldown
	insuffSubnet string    // the subnet EC2 found full ("" if unknown)
	fellBack     time.Time // the last fallback from prefixes to /32s (resumePrefixes)
	cooldownWait timedWait // the insufficient-address cooldown, shown in /v1/pool
	// backoffs pause each kind of pool action after it failed, each
	// cleared only by a success of its own kind (backoff.go).
	backoffs [numFailKinds]kindBackoff
	// strays: the primary ENI's /28s under custom networking that held
	// restored pods, released once unused (strayprefix.go).
	strays map[netip.Prefix]bool
	// gone: ENIs EC2 answered an assign NotFound for, passed over by
	// growth until a reconcile drops them (goneeni.go).
	gone map[string]goneENI
}

// poolEnv is what every card's pool manager plans with and acts through,
// shared by the cards; each part locks itself or is fixed after Init.
type poolEnv struct {
	cfg         config.Config
	times       Intervals
	ec2         EC2
	host        HostNetwork
	node        *nodeState
	book        *eniBook
	subnets     *subnetFinder
	imds        *imdsWatch
	kube        *kubeRef
	observe     *observer
	last        *lastAction
	terminating *latch
	sgpp        func() bool // a slot is reserved for the trunk ENI (cniNodeFeatures)
	waiting     func() int  // AddNetwork calls waiting for an address (handout)
	trying      func() int  // AddNetwork calls trying for an address now (handout)
	wake        func()      // retry the waiting AddNetwork calls (handout)
	reconcile   func()      // ask for a reconcile now (nil: none)
	// demand returns a channel closed when the pool is next asked for
	// addresses (a new waiting ADD); nil: never.
	demand func() <-chan struct{}
	log    *slog.Logger
}

func newPoolManager(index int, store *datastore.Store, maxENIs int, pd bool, track *introspect.Tracker, env *poolEnv) *poolManager {
	c := &poolManager{index: index, store: store, maxENIs: maxENIs, env: env, track: track, backoff: env.times.FailureBackoff,
		cool: env.times.InsufficientCool, unmanaged: map[string]int{}, unfreed: map[string]int{}}
	c.pd.set(pd)
	c.wantPD = pd
	return c
}

// noteFallback records a fallback from prefixes to /32s.
func (c *poolManager) noteFallback(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.fellBack = at
}

// resumePrefixes puts a card that fell back to /32s (InsufficientCidrBlocks)
// back on prefixes once the subnet-full cooldown has passed since, as
// upstream asks for prefixes again after it: the fallback serves pods
// while the subnet is fragmented, but /32s alone cap the node far below
// what prefixes give it (an m5.large: 27 addresses against max pods 110).
// Pods keep their /32s; unused ones are released as the other mode's. If
// the subnet is still fragmented, the next InsufficientCidrBlocks falls
// back again: one failed call per cooldown.
func (c *poolManager) resumePrefixes(now time.Time) {
	if !c.wantPD || c.pd.get() {
		return
	}
	c.mu.Lock()
	due := !c.fellBack.IsZero() && now.Sub(c.fellBack) >= c.cool
	c.mu.Unlock()
	if !due {
		return
	}
	if err := c.store.SetMode(datastore.ModePrefixIPv4); err != nil {
		c.env.log.Warn("could not go back to prefixes after the /32 fallback", "card", c.index, "err", err)
		return
	}
	c.pd.set(true)
	c.env.log.Info("asking EC2 for prefixes again after the /32 fallback", "card", c.index, "fellBackFor", now.Sub(c.fellBack).Round(time.Second))
}

// view converts the card into the planner's input.
func (c *poolManager) view() pool.Pool {
	c.mu.Lock()
	// An ENI still attached though ipamd let go of it takes a slot like an
	// unmanaged one: planning a new ENI in its place only fails to attach.
	p := pool.Pool{Card: c.index, Unmanaged: len(c.unmanaged) + len(c.unfreed)}
	c.mu.Unlock()
	for _, e := range c.store.ENIs() {
		pe := pool.ENI{ID: e.ID, DeviceNumber: e.DeviceNumber, Primary: e.IsPrimary, Trunk: e.IsTrunk,
			EFA: e.IsEFA, Excluded: e.ExcludedForPods, CreatedAt: e.CreatedAt}
		for _, ci := range e.CIDRs {
			if ci.Prefix.Addr().Is6() {
				continue
			}
			pe.CIDRs = append(pe.CIDRs, pool.CIDR{Prefix: ci.Prefix, Assigned: ci.Assigned, Cooling: ci.Cooling})
		}
		p.ENIs = append(p.ENIs, pe)
	}
	return p
}

// slotsTaken counts the ENI slots in use: managed, unmanaged and unfreed.
func (c *poolManager) slotsTaken() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.store.ENIs()) + len(c.unmanaged) + len(c.unfreed)
}

// addUnmanaged records an attached ENI ipamd does not manage.
func (c *poolManager) addUnmanaged(id string, device int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unmanaged[id] = device
}

func (c *poolManager) isUnmanaged(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.unmanaged[id]
	return ok
}

func (c *poolManager) unmanagedIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Sorted(maps.Keys(c.unmanaged))
}

func (c *poolManager) unmanagedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.unmanaged)
}

// keepUnfreed records an ENI out of the store that may still be attached.
func (c *poolManager) keepUnfreed(id string, device int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unfreed[id] = device
	c.detachLooks, c.detachLookAt = 0, time.Time{} // a new ENI to look at: at once
}

func (c *poolManager) forgetUnfreed(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.unfreed, id)
}

func (c *poolManager) unfreedIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.unfreed))
	for id := range c.unfreed {
		out = append(out, id)
	}
	return out
}

// freeDevices is the k lowest device indexes on the card that no known
// ENI and no index in taken (ENIs being attached) uses.
func (c *poolManager) freeDevices(k int, taken map[int]bool) []int {
	used := map[int]bool{}
	for d := range taken {
		used[d] = true
	}
	for _, e := range c.store.ENIs() {
		used[e.DeviceNumber] = true
	}
	c.mu.Lock()
	for _, d := range c.unmanaged {
		used[d] = true
	}
	for _, d := range c.unfreed {
		used[d] = true
	}
	c.mu.Unlock()
	if c.index == 0 {
		used[0] = true
	}
	var out []int
	for i := 0; len(out) < k; i++ {
		if !used[i] {
			out = append(out, i)
		}
	}
	return out
}

func (c *poolManager) setState(starved string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.starved = starved
	if err != nil || starved == "" {
		c.lastErr = err
	}
}

// setFull records the hard limit a pool cycle found; maxPods tells that
// it is max pods, as found in the same view (not re-read here: a DEL in
// between would leave a max-pods limit that fullText never re-checks).
func (c *poolManager) setFull(limit string, maxPods bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.full, c.fullMaxPods = limit, maxPods
}

// fullText is the hard limit the last pool cycle found the card at ("":
// none). Max pods is checked again now: cooling addresses do not count
// against it, so each DEL since that cycle (its address now cooling) may
// have made room, and an ADD must then wait for the growth, not fail.
//
// A subnet-full cooldown that outlasts any ADD's wait (Intervals.AddWait,
// the plugin's own deadline) is a limit too while it lasts: no address can
// come from EC2 before the ADD gives up, so the ADD fails now, naming the
// subnet, and kubelet retries, rather than waiting out its deadline.
func (c *poolManager) fullText() string {
	c.mu.Lock()
	full, maxPods := c.full, c.fullMaxPods
	until, code, subnet := c.insufficient, c.insuffCode, c.insuffSubnet
	c.mu.Unlock()
	if maxPods && !c.atMaxPods() {
		full = ""
	}
	if full == "" && time.Now().Add(c.env.times.AddWait).Before(until) {
		return subnetFullText(c.index, subnet, code, until)
	}
	return full
}

// subnetFullText names a subnet-full cooldown for errors and /v1/pool.
func subnetFullText(card int, subnet, code string, until time.Time) string {
	where := "the subnet"
	if subnet != "" {
		where = "subnet " + subnet
	}
	return fmt.Sprintf("card %d: %s has no room (EC2 %s); no new addresses before %s", card, where, code, until.Format(time.RFC3339))
}

// subnetOf is the subnet of one of the card's ENIs ("" if unknown).
func (c *poolManager) subnetOf(eniID string) string {
	info, _ := c.store.ENI(eniID)
	return info.SubnetID
}

// atMaxPods reports whether the card holds max pods addresses for pods now.
func (c *poolManager) atMaxPods() bool {
	return pool.AtMaxPods(c.view(), pool.Params{MaxPods: c.env.node.maxPods.get(), PrefixDelegation: c.pd.get()})
}

func (c *poolManager) state() (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.starved, c.lastErr
}

// gates are the card's timers the planner's permissions depend on.
type gates struct {
	insufficient, lastRelease time.Time
	insuffCode                string
	prefixes                  bool
}

func (c *poolManager) gates() gates {
	c.mu.Lock()
	defer c.mu.Unlock()
	return gates{insufficient: c.insufficient, lastRelease: c.lastRelease, insuffCode: c.insuffCode, prefixes: c.pd.get()}
}

// released notes a release to EC2, which spaces the next one.
func (c *poolManager) released(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastRelease = at
}

// backOff pauses the card's actions of kind k after a failure, doubling
// up to a minute, so a persistent failure (missing permission, a broken
// subnet) does not cost an EC2 call every cycle, even while actions of
// other kinds succeed. A node ENIConfig that cannot be resolved costs no
// EC2 call (a read of the informer's cache), and users create the
// ENIConfig expecting pods to start: that pause stops at ENIConfigRetry,
// so the ENIConfig is picked up within about a pool tick.
func (c *poolManager) backOff(k failKind, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := &c.backoffs[k]
	now := time.Now()
	if b.failures > 0 && now.Sub(b.retryAt) > c.backoff<<streakGap {
		// Nothing of the kind was tried for longer than the longest
		// pause: the old streak is over (its pods went away), and a new
		// failure pauses as a first one does.
		b.failures = 0
	}
	b.failures++
	b.err = err
	limit := time.Minute
	if _, ok := errors.AsType[eniConfigError](err); ok {
		limit = min(limit, c.env.times.ENIConfigRetry)
	}
	b.retryAt = now.Add(min(c.backoff<<min(b.failures-1, 10), limit))
	b.wait.show(c.track, waitCooldown, fmt.Sprintf("backoff after %d failed pool action(s) on card %d: %s (%s)",
		b.failures, c.index, causeOf(err), k), b.retryAt)
}

// clearBackoff ends kind k's pause after one of its actions succeeded.
func (c *poolManager) clearBackoff(k failKind) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := &c.backoffs[k]
	b.wait.clear()
	*b = kindBackoff{}
}

// backingOff reports whether the card is pausing actions of kind k after
// a failure.
func (c *poolManager) backingOff(k failKind) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Before(c.backoffs[k].retryAt)
}

// noteInsufficient starts the no-growth cooldown after a subnet-full error
// in subnet ("" if unknown).
func (c *poolManager) noteInsufficient(err error, subnet string) {
	if !awsutils.IsInsufficientCapacity(err) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.insufficient = time.Now().Add(c.cool)
	c.insuffCode, c.insuffSubnet = awsutils.Code(err), subnet
	in := ""
	if subnet != "" {
		in = " in " + subnet
	}
	c.cooldownWait.show(c.track, waitCooldown, fmt.Sprintf("subnet full (EC2 %s): no growth on card %d until %s%s",
		c.insuffCode, c.index, c.insufficient.Format(time.RFC3339), in), c.insufficient)
}

// timedWait shows a wait that is a state rather than a call (a cooldown, a
// backoff) as an activity until it expires or is replaced. Guarded by the
// card's mu.
type timedWait struct {
	end   func()
	timer *time.Timer
}

func (w *timedWait) show(t *introspect.Tracker, kind, what string, until time.Time) {
	w.clear()
	w.end = t.Begin(kind, what)
	w.timer = time.AfterFunc(time.Until(until), w.end)
}

func (w *timedWait) clear() {
	if w.end == nil {
		return
	}
	w.timer.Stop()
	w.end()
	*w = timedWait{}
}

// addCIDRs puts what EC2 says eniID holds into the store; a CIDR the store
// already has is not an error (a resync or retry may repeat one).
func (c *poolManager) addCIDRs(eniID string, cidrs []netip.Prefix) error {
	var errs []error
	for _, p := range cidrs {
		if err := c.store.AddCIDR(eniID, p); err != nil && !errors.Is(err, datastore.ErrDuplicateCIDR) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
