package ipamd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/metrics"
	"github.com/vpc-cni/vpc-cni/pkg/version"
)

// Intervals are the daemon's timings; zero fields take upstream's values.
type Intervals struct {
	Pool             time.Duration // pool manager tick (5 s)
	Reconcile        time.Duration // EC2/IMDS reconcile (60 s)
	ReleaseSpacing   time.Duration // minimum time between two releases (30 s)
	MinENIAge        time.Duration // ENIs younger are never freed (1 min)
	InsufficientCool time.Duration // no growth after InsufficientCidrBlocks/FreeAddresses (120 s)
	ReleasedGrace    time.Duration // reconcile ignores just-released CIDRs (60 s)
	IMDSWait         time.Duration // bound on waiting for a new ENI in IMDS (10 s)
	AddWait          time.Duration // AddNetwork wait when the request has no deadline (20 s)
	LeakedSweep      time.Duration // leaked-ENI sweep period (1 h, plus up to 5 min jitter)
	LeakedMinAge     time.Duration // leaked ENIs younger than this are kept (5 min)
	NodeRefresh      time.Duration // re-read VPC CIDRs and security groups (30 s)
	FailureBackoff   time.Duration // first pause after a failed pool action, doubling to 1 min (1 s)
	ENIConfigRetry   time.Duration // cap of that pause while the node's ENIConfig cannot be resolved (5 s)
	OrphanSweep      time.Duration // how often pods' host veths are checked (30 s)
	OrphanGrace      time.Duration // a pod's veth absent this long releases its address (2 min)
	CheckpointRetry  time.Duration // retry of a failed checkpoint write, for health (1 s)
	PendingWait      time.Duration // restored allocations on no known CIDR are dropped after (5 min)
	SubnetCache      time.Duration // subnet discovery's answer is reused this long, unless a subnet filled (5 min)
	AttachTime       time.Duration // how long a new ENI takes to bring addresses; sooner cooldown ends serve waiting ADDs instead (2 s)
	FreeWait         time.Duration // bound on one ENI free (detach, wait, delete); a later pool cycle finishes it (30 s)
	HostRetry        time.Duration // first pause before Init programs the host again after the xtables lock stayed held, doubling to 30 s (1 s)
}

func (iv Intervals) withDefaults() Intervals {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&iv.Pool, 5*time.Second)
	def(&iv.Reconcile, 60*time.Second)
	def(&iv.ReleaseSpacing, 30*time.Second)
	def(&iv.MinENIAge, time.Minute)
	def(&iv.InsufficientCool, 120*time.Second)
	def(&iv.ReleasedGrace, 60*time.Second)
	def(&iv.IMDSWait, 10*time.Second)
	def(&iv.AddWait, 20*time.Second)
	def(&iv.LeakedSweep, time.Hour)
	def(&iv.LeakedMinAge, 5*time.Minute)
	def(&iv.NodeRefresh, 30*time.Second)
	def(&iv.FailureBackoff, time.Second)
	def(&iv.ENIConfigRetry, 5*time.Second)
	def(&iv.OrphanSweep, 30*time.Second)
	def(&iv.OrphanGrace, 2*time.Minute)
	def(&iv.CheckpointRetry, time.Second)
	def(&iv.PendingWait, 5*time.Minute)
	def(&iv.SubnetCache, 5*time.Minute)
	def(&iv.AttachTime, 2*time.Second)
	def(&iv.FreeWait, 30*time.Second)
	def(&iv.HostRetry, time.Second)
	return iv
}

// poolGather is how long the pool manager waits after the first ADD that
// found no address before it plans, so ADDs of the same burst (a kubelet
// starting many pods) count as one demand.
const poolGather = 25 * time.Millisecond

// FastInsufficientCool is the no-growth cooldown after a subnet-full error
// under VPC_CNI_TEST_FAST_INTERVALS: a few pool ticks, not two minutes.
const FastInsufficientCool = 2 * time.Second

// times are the intervals to use: Times, with the subnet-full cooldown
// shortened in test mode (it follows the config, so every caller that sets
// VPC_CNI_TEST_FAST_INTERVALS gets it, whatever Times it passes).
func (o Options) times() Intervals {
	t := o.Times
	if o.Config.FastIntervals && t.InsufficientCool == 0 {
		t.InsufficientCool = FastInsufficientCool
	}
	return t
}

// Options assemble an IPAM.
type Options struct {
	Config   config.Config
	EC2      EC2
	Metadata Metadata
	Subnets  SubnetLister    // nil: no subnet discovery
	Leaked   LeakedENILister // nil: no leaked-ENI sweep
	Host     HostNetwork     // nil: no host networking (test-only mode)
	Kube     Kubernetes      // nil: no API server
	Logger   *slog.Logger
	Times    Intervals
	// PodLinks tells whether a pod's host veth exists: at restore, and in
	// the orphan sweep (nil: every pod is live, nothing is swept).
	PodLinks PodLinks
	// Metrics receives upstream's awscni_* and our vpccni_* metrics (nil:
	// a private set nobody serves).
	Metrics *metrics.Metrics
	// Tracker records what ipamd waits on, for /v1/pool (nil: a new one).
	// EC2 calls show there when it is also the EC2 client's
	// awsutils.Config.Calls.
	Tracker *introspect.Tracker
	// MetricsListener and IntrospectionListener, when set, are served by
	// Run (/metrics and the introspection paths) until it returns.
	MetricsListener       net.Listener
	IntrospectionListener net.Listener
	// MetricsListen and IntrospectionListen open the listener again when
	// it is missing (the first listen failed, say the port was taken) or
	// its server failed: Run keeps trying with back-off, as upstream
	// restarts these servers, while it serves pods (nil: no retry).
	MetricsListen       func() (net.Listener, error)
	IntrospectionListen func() (net.Listener, error)
	// StartedAt is when the process started, for
	// awscni_ipamd_startup_duration_seconds (zero: when New runs).
	StartedAt time.Time
}

// IPAM is the node's address manager: the wiring of its parts, each the
// one owner of its state (see the package doc). Apart from the parts, its
// fields are set by New and Init and never change after.
type IPAM struct {
	cfg     config.Config
	ec2     EC2
	md      Metadata
	subs    SubnetLister
	host    HostNetwork
	log     *slog.Logger
	times   Intervals
	metrics *metrics.Metrics
	track   *introspect.Tracker

	metricsL      net.Listener
	introL        net.Listener
	metricsListen func() (net.Listener, error)
	introListen   func() (net.Listener, error)

	kube       *kubeRef
	node       *nodeState
	cards      *cardSet // managed network cards, card 0 first; built by Init
	book       *eniBook
	subnets    *subnetFinder
	poolEnv    *poolEnv // what every card's pool manager acts through
	cycler     *poolCycler
	adopt      *adopter
	hostSync   *hostSync
	reconciler *reconciler
	handout    *handout
	cpHealth   *cpHealth
	observe    *observer
	last       *lastAction
	features   *cniNodeFeatures
	leaked     *leakSweeper
	orphans    *orphanSweeper
	restore    *restorer
	branch     *branchWait
	refresh    *nodeRefresher

	pool *trigger
	// reconciled: branch-pod ADDs waiting for the trunk ask for a reconcile
	// and wait for its end (trunkwait.go).
	reconciled *reconcileSignal
	// changes serialises what changes the pool in EC2 (pool cycles,
	// reconciles, node refreshes). It guards no field: AddNetwork and
	// DelNetwork only touch the datastores, which lock themselves.
	changes     sync.Mutex
	ready       *latch // Init completed
	terminating *latch // SIGTERM: no more attach or free
}

// New validates the options and builds an IPAM; Init must run before it
// serves.
func New(o Options) (*IPAM, error) {
	var errs []error
	if err := o.Config.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.EC2 == nil {
		errs = append(errs, errors.New("ipamd: no EC2 client"))
	}
	if o.Metadata == nil {
		errs = append(errs, errors.New("ipamd: no instance metadata client"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := o.Metrics
	if m == nil {
		m = metrics.New(version.Version)
	}
	track := o.Tracker
	if track == nil {
		track = introspect.NewTracker(nil)
	}
	started := o.StartedAt
	if started.IsZero() {
		started = time.Now()
	}
	var subs SubnetLister = noSubnets{}
	if o.Subnets != nil {
		subs = o.Subnets
	}
	var leak LeakedENILister = noLeaked{}
	if o.Leaked != nil {
		leak = o.Leaked
	}
	var host HostNetwork = noHost{}
	if o.Host != nil {
		host = o.Host
	}
	n := &IPAM{
		cfg: o.Config, ec2: o.EC2, md: o.Metadata, subs: subs, host: host,
		log: log, times: o.times().withDefaults(), metrics: m, track: track,
		metricsL: o.MetricsListener, introL: o.IntrospectionListener,
		metricsListen: o.MetricsListen, introListen: o.IntrospectionListen,
		kube: &kubeRef{track: track}, node: newNodeState(), cards: &cardSet{}, book: newENIBook(),
		last: &lastAction{},
		pool: newTrigger(), reconciled: newReconcileSignal(), ready: newLatch(), terminating: newLatch(),
	}
	n.kube.set(o.Kube)
	n.observe = &observer{m: m, cards: n.cards, node: n.node, kube: n.kube, startedAt: started}
	n.handout = &handout{changed: newSignal(), limited: newSignal(), cfg: o.Config, node: n.node,
		cards: n.cards, pool: n.pool, terminating: n.terminating, observe: n.observe,
		m: m, kube: n.kube, host: host, addWait: n.times.AddWait, track: n.track, log: log}
	n.orphans = &orphanSweeper{links: o.PodLinks, host: host, cards: n.cards,
		released: func() {
			n.handout.wake()
			n.observe.pool()
			n.pool.Fire() // the pool may shrink now
		},
		every: n.times.OrphanSweep, grace: n.times.OrphanGrace, count: m.OrphanReleases, log: log}
	if o.PodLinks != nil {
		n.handout.claim = n.orphans.claim
	}
	n.restore = &restorer{backingStore: o.Config.BackingStore, links: o.PodLinks, host: host, cards: n.cards,
		dropped: m.RestoreDropped, pendingWait: n.times.PendingWait, log: log}
	n.branch = &branchWait{kube: n.kube, node: n.node, cards: n.cards, reconciled: n.reconciled}
	n.features = &cniNodeFeatures{cfg: o.Config, kube: n.kube, node: n.node, cards: n.cards,
		trunk: n.branch, log: log}
	n.hostSync = &hostSync{cfg: o.Config, node: n.node, host: host, observe: n.observe, retry: n.times.HostRetry, log: log}
	n.refresh = &nodeRefresher{cfg: o.Config, md: o.Metadata, ec2: o.EC2, node: n.node, cards: n.cards,
		ready: n.ready, changes: &n.changes, reconcileHost: n.hostSync.program, every: n.times.NodeRefresh, log: log}
	n.subnets = &subnetFinder{cfg: o.Config, node: n.node, kube: n.kube, lister: subs, ttl: n.times.SubnetCache, log: log}
	n.poolEnv = &poolEnv{cfg: o.Config, times: n.times, ec2: o.EC2, host: host, node: n.node, book: n.book,
		subnets: n.subnets, imds: &imdsWatch{md: o.Metadata, track: track, limit: n.times.IMDSWait, log: log, timed: m.ObserveIMDSWait},
		kube: n.kube, observe: n.observe, last: n.last, terminating: n.terminating, sgpp: n.features.sgppPossible,
		waiting: n.handout.waiting, trying: n.handout.tryingNow, wake: n.handout.wake, demand: n.pool.demand, log: log,
		reconcile: func() { n.reconciled.request() }}
	n.cycler = &poolCycler{cards: n.cards, cfg: o.Config, ec2: o.EC2, book: n.book,
		kube: n.kube, features: n.features, observe: n.observe, ready: n.ready, terminating: n.terminating,
		changes: &n.changes, waiting: n.handout.waiting, limited: n.handout.limited, log: log}
	n.adopt = &adopter{cfg: o.Config, ec2: o.EC2, host: host, node: n.node, book: n.book, subnets: n.subnets,
		cards: n.cards, log: log}
	n.reconciler = &reconciler{cfg: o.Config, md: o.Metadata, node: n.node, book: n.book, adopt: n.adopt, host: host,
		cards: n.cards, metrics: m, observe: n.observe, last: n.last, asked: n.reconciled,
		ready: n.ready, changes: &n.changes, wake: n.handout.wake, every: n.times.Reconcile, grace: n.times.ReleasedGrace, log: log}
	n.leaked = newLeakSweeper(o.Config, o.EC2, leak, n.node, n.times, n.terminating, log)
	n.leaked.observe = n.observe
	n.pool.gather = poolGather
	n.cpHealth = newCPHealth(func(ok bool) {
		if ok {
			m.CheckpointOK.Set(1)
			n.log.Info("checkpoint writable again; health SERVING")
			return
		}
		m.CheckpointOK.Set(0)
		_, err := n.cpHealth.ok()
		n.log.Error("checkpoint cannot be written; health NOT_SERVING until it can", "err", err)
	})
	return n, nil
}

// PoolCycle plans and executes actions on every card until each is at its
// targets (or blocked). It is what the pool manager runs on every tick and
// on demand; tests call it directly.
func (n *IPAM) PoolCycle(ctx context.Context) { n.cycler.cycle(ctx) }

// Reconcile compares the datastores with instance metadata and, when they
// disagree, with EC2 (reconcile.go). The reconciler runs it on its own;
// tests call it directly.
func (n *IPAM) Reconcile(ctx context.Context) error { return n.reconciler.reconcile(ctx) }

// SetKubernetes hands ipamd an API server client it started without (the
// API server became reachable later, docs/compatibility.md, "API server at
// start") and, once the node is initialised, re-reads the node's max pods
// from it (so it blocks until Init completes or ctx ends). A second call
// is ignored.
func (n *IPAM) SetKubernetes(ctx context.Context, k Kubernetes) {
	if !n.kube.set(k) {
		return
	}
	// Init reads max pods once; wait for it so the node's value wins.
	select {
	case <-n.ready.done():
	case <-ctx.Done():
		return
	}
	mp := maxPods(ctx, n.cfg, n.kube.get(), n.node.typ, n.log)
	n.node.maxPods.set(mp)
	n.log.Info("Kubernetes API server reachable: max pods re-read from the node", "maxPods", mp)
	n.pool.Fire()
}

// Terminate stops every ENI attach and free (SIGTERM); address hand-out
// and release to pods go on while the server drains.
func (n *IPAM) Terminate() { n.terminating.set() }

// WaitReady blocks until Init completed or ctx ends.
func (n *IPAM) WaitReady(ctx context.Context) error {
	// Readiness first: with both channels ready, select would pick one at
	// random and a ready ipamd could answer "not initialised".
	if n.ready.isSet() {
		return nil
	}
	select {
	case <-n.ready.done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: it is still reading the instance, its ENIs and the checkpoint; retry", ErrNotInitialised)
	}
}

// Ready reports whether Init has completed.
func (n *IPAM) Ready() bool { return n.ready.isSet() }

// Snapshot is the daemon's state for introspection and metrics.
type Snapshot struct {
	InstanceID string
	Cards      []CardSnapshot
}

// CardSnapshot is one network card's pool.
type CardSnapshot struct {
	Card      int
	Stats     datastore.Stats
	ENIs      []datastore.ENIInfo
	Unmanaged []string // attached ENIs of the card ipamd does not manage
	Starved   string
	LastErr   string
}

// Snapshot returns copies of every card's pool state (none before Init
// completed).
func (n *IPAM) Snapshot() Snapshot {
	if !n.Ready() {
		return Snapshot{}
	}
	s := Snapshot{InstanceID: n.node.id.InstanceID}
	for _, c := range n.cards.all() {
		starved, err := c.state()
		cs := CardSnapshot{Card: c.index, Stats: c.store.Stats(), ENIs: c.store.Snapshot(), Unmanaged: c.unmanagedIDs(),
			Starved: starved}
		if err != nil {
			cs.LastErr = err.Error()
		}
		s.Cards = append(s.Cards, cs)
	}
	return s
}
