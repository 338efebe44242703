package ipamd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/networkutils"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// fakeHost records the host state ipamd asks for (host networking is
// root-only; its own package tests it against the kernel).
type fakeHost struct {
	mu        sync.Mutex
	enis      map[netip.Addr]networkutils.ENI // by ENI primary IP
	host      *networkutils.HostConfig
	setupErr  error // returned by the next SetupENI
	podRules  []netip.Addr
	restored  map[netip.Addr]int // pod IP → table of its restored from-pod rule
	teardowns int
}

func newFakeHost() *fakeHost { return &fakeHost{enis: map[netip.Addr]networkutils.ENI{}} }

func (f *fakeHost) SetupENI(_ context.Context, e networkutils.ENI) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.setupErr; err != nil {
		f.setupErr = nil
		return err
	}
	// The same rule the real host applies, so the fake cannot drift.
	if err := e.Validate(); err != nil {
		return fmt.Errorf("fakeHost: %w", err)
	}
	f.enis[e.PrimaryIP] = e
	return nil
}

func (f *fakeHost) TeardownENI(_ context.Context, ip netip.Addr, _ int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.enis, ip)
	f.teardowns++
	return nil
}

func (f *fakeHost) ReconcileHost(_ context.Context, c networkutils.HostConfig) (networkutils.HostResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.host = &c
	return networkutils.HostResult{}, nil
}

func (f *fakeHost) DeletePodRules(_ context.Context, ips ...netip.Addr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.podRules = append(f.podRules, ips...)
	return nil
}

func (f *fakeHost) RestorePodRules(_ context.Context, pods []networkutils.PodRule) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.restored == nil {
		f.restored = map[netip.Addr]int{}
	}
	for _, p := range pods {
		f.restored[p.IP] = p.Table
	}
	return nil
}

// LinkByMAC finds a wired ENI's link; its index is 10 + device number.
func (f *fakeHost) LinkByMAC(_ context.Context, mac net.HardwareAddr) (networkutils.Link, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.enis {
		if e.MAC.String() == mac.String() {
			return networkutils.Link{Name: fmt.Sprint("eth", e.DeviceNumber), Index: 10 + e.DeviceNumber, MAC: e.MAC}, nil
		}
	}
	return networkutils.Link{}, fmt.Errorf("no link with MAC %s", mac)
}

func (f *fakeHost) wired() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.enis)
}

// fastTimes are test intervals: no spacing between releases, no minimum
// ENI age, short waits.
var fastTimes = Intervals{
	Pool: 20 * time.Millisecond, Reconcile: time.Hour, ReleaseSpacing: time.Nanosecond, MinENIAge: time.Nanosecond,
	ReleasedGrace: time.Nanosecond, IMDSWait: 2 * time.Second, AddWait: 5 * time.Second,
	LeakedSweep: time.Hour, LeakedMinAge: time.Nanosecond, NodeRefresh: time.Hour,
	FailureBackoff: time.Nanosecond,
}

type harness struct {
	log  *slog.Logger // harnessOpts.log
	t    testing.TB
	env  *simtest.Env
	ec2  *awsutils.EC2
	md   *awsutils.Metadata
	host *fakeHost
	// links, when set before connect, is the IPAM's PodLinks.
	links *fakeLinks
	// podLinks, when set, is the IPAM's PodLinks instead of links.
	podLinks PodLinks
	kube     Kubernetes // the IPAM's API server (nil: none)
	cfg      config.Config
	n        *IPAM
	srv      *Server
	dir      string
	retry    *awsutils.RetryConfig // harnessOpts.retry
}

type harnessOpts struct {
	instanceType string
	cfg          func(*config.Config)
	times        *Intervals
	scenario     func(*vpcsim.Scenario)
	noInit       bool
	links        *fakeLinks
	podLinks     PodLinks     // nil: links
	kube         Kubernetes   // nil: no API server
	log          *slog.Logger // nil: discarded (or stderr with IPAMD_TEST_LOG)
	// retry, when set, is the EC2 retryer's configuration instead of
	// the harness's few quick attempts.
	retry *awsutils.RetryConfig
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	sc := simtest.Basic()
	if o.instanceType != "" {
		sc.Instances[0].Type = o.instanceType
	}
	if o.scenario != nil {
		o.scenario(&sc)
	}
	env := simtest.Start(t, sc)
	h := &harness{t: t, env: env, host: newFakeHost(), dir: t.TempDir(), links: o.links, podLinks: o.podLinks, kube: o.kube, log: o.log,
		retry: o.retry}
	h.cfg = config.Defaults()
	h.cfg.BackingStore = filepath.Join(h.dir, "ipam.json")
	h.cfg.SocketPath = filepath.Join(h.dir, "ipamd.sock")
	h.cfg.LogLevel = "debug"
	if o.cfg != nil {
		o.cfg(&h.cfg)
	}
	times := fastTimes
	if o.times != nil {
		times = *o.times
	}
	h.connect(times)
	// After the test's own cleanups (loops stopped), before TempDir's:
	// the IPAM stops as ipamd does (run.go), so no idle fold of its
	// checkpoint log writes into the directory as it is removed.
	t.Cleanup(func() { h.n.cards.close(h.n.log) })
	if !o.noInit {
		if err := h.n.Init(context.Background()); err != nil {
			t.Fatalf("Init: %v", err)
		}
	}
	return h
}

// connect builds the awsutils adapters and a fresh IPAM (as a restart
// does), sharing the simulator, host and checkpoint directory.
func (h *harness) connect(times Intervals) {
	h.t.Helper()
	if h.n != nil {
		// The old IPAM stops as ipamd does (run.go): its checkpoint logs
		// are folded. Left open, its idle fold would later write its
		// state over the new IPAM's file and remove the new IPAM's log,
		// which no restarted process can do.
		h.n.cards.close(h.n.log)
	}
	track := introspect.NewTracker(nil)
	acfg := awsutils.Config{
		Region: "us-west-2", EC2Endpoint: h.env.EC2URL, IMDSEndpoint: h.env.IMDSURL(simtest.InstanceID),
		Credentials: &awsutils.StaticCredentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"},
		Retry: awsutils.RetryConfig{MaxAttempts: 3, Backoff: awsutils.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond},
			ThrottleBackoff: awsutils.Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}},
		DetachPoll: awsutils.Backoff{Base: time.Millisecond, Max: 20 * time.Millisecond},
		Limits:     awsutils.RateLimits{Disabled: true},
		Calls:      track,
	}
	if h.retry != nil {
		acfg.Retry = *h.retry
	}
	md, err := awsutils.NewMetadata(acfg)
	if err != nil {
		h.t.Fatal(err)
	}
	ec2, err := awsutils.NewEC2(context.Background(), acfg, md)
	if err != nil {
		h.t.Fatal(err)
	}
	h.md, h.ec2 = md, ec2
	log := slog.New(slog.DiscardHandler)
	if h.log != nil {
		log = h.log
	} else if os.Getenv("IPAMD_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	opts := Options{Config: h.cfg, EC2: ec2, Metadata: md, Subnets: ec2, Leaked: ec2, Host: h.host,
		Logger: log, Times: times, Tracker: track, Kube: h.kube}
	if h.podLinks != nil {
		opts.PodLinks = h.podLinks
	} else if h.links != nil {
		opts.PodLinks = h.links
	}
	n, err := New(opts)
	if err != nil {
		h.t.Fatal(err)
	}
	h.n = n
	h.srv = NewServer(n)
}

// calls returns vpcsim's EC2 call counts.
func (h *harness) calls() map[string]int64 {
	st := h.env.Sim.Stats()
	out := map[string]int64{}
	for k, v := range st.Calls {
		out[k] = v
	}
	return out
}

func callDelta(before, after map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// simCounts are the instance's ENIs, secondary IPs and prefixes in vpcsim.
type simCounts struct{ ENIs, IPs, Prefixes int }

func (h *harness) simCounts() simCounts {
	h.t.Helper()
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		h.t.Fatal(err)
	}
	var c simCounts
	for _, e := range inst.ENIs {
		c.ENIs++
		c.IPs += len(e.SecondaryIPs)
		c.Prefixes += len(e.Prefixes)
	}
	return c
}

func podKey(i int) datastore.Key {
	return datastore.Key{NetworkName: "aws-cni", ContainerID: fmt.Sprintf("c%06d", i), IfName: "eth0"}
}

// setPods brings the number of pods to want, adding pods with the lowest
// free numbers and deleting the highest. The new pods' ADDs come at once,
// as a kubelet starting them sends them; whenever every ADD not yet
// answered waits for an address and none is free, one pool cycle runs
// (synchronously: no pool manager runs here).
func (h *harness) setPods(pods map[int]bool, want int) {
	h.t.Helper()
	ctx := context.Background()
	for i := len(pods) - 1; len(pods) > want; i-- {
		if !pods[i] {
			continue
		}
		if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: podKey(i).ContainerID, IfName: "eth0"}); err != nil {
			h.t.Fatalf("DelNetwork pod %d: %v", i, err)
		}
		delete(pods, i)
	}
	held := h.podsHeld()
	var add []int
	for i := 0; len(pods)+len(add) < want; i++ {
		if !pods[i] {
			add = append(add, i)
		}
	}
	type result struct {
		pod int
		err error
	}
	results := make(chan result, len(add))
	for _, i := range add {
		go func() {
			_, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: podKey(i).ContainerID,
				IfName: "eth0", K8SPodNamespace: "default", K8SPodName: fmt.Sprint("pod-", i)})
			results <- result{i, err}
		}()
	}
	answered := 0
	collect := func() {
		for {
			select {
			case r := <-results:
				if r.err != nil {
					h.t.Fatalf("pod %d: %v", r.pod, r.err)
				}
				pods[r.pod] = true
				answered++
			default:
				return
			}
		}
	}
	for cycles := 0; ; cycles++ {
		deadline := time.Now().Add(10 * time.Second)
		for collect(); answered < len(add) && !h.addsStarved(len(add)-answered, held+answered); collect() {
			if time.Now().After(deadline) {
				h.t.Fatalf("%d of %d ADDs answered, %d waiting, after 10 s", answered, len(add), h.waitingADDs())
			}
			time.Sleep(time.Millisecond) // pacing between polls of the answers and /v1/pool
		}
		if answered == len(add) {
			break
		}
		if cycles > 5 {
			h.t.Fatalf("%d ADDs still wait after %d pool cycles: %+v", len(add)-answered, cycles, h.n.Snapshot().Cards)
		}
		h.n.PoolCycle(ctx)
	}
	h.settle()
}

// addsStarved reports whether all of the unanswered ADDs wait for an
// address and no card has one free for them, as /v1/pool shows it. held is
// the number of pods that should hold an address: more means an ADD took
// one and has yet to answer.
func (h *harness) addsStarved(unanswered, held int) bool {
	p := h.n.Introspection().Pool()
	if p.WaitingADDs != unanswered || h.podsHeld() != held {
		return false
	}
	for _, c := range p.Cards {
		if c.Free > 0 {
			return false
		}
	}
	return true
}

// podsHeld is the number of pods holding an address on any card.
func (h *harness) podsHeld() int {
	n := 0
	for _, c := range h.n.Snapshot().Cards {
		n += c.Stats.Pods
	}
	return n
}

// waitingADDs is how many AddNetwork calls wait for an address, as
// /v1/pool shows it.
func (h *harness) waitingADDs() int { return h.n.Introspection().Pool().WaitingADDs }

// coolingEnd is when the first cooling address becomes usable again, from
// the release times /v1/enis shows.
func (h *harness) coolingEnd() (time.Time, bool) {
	var first time.Time
	found := false
	for _, card := range h.n.Introspection().ENIs() {
		for _, e := range card.ENIs {
			for _, cidrs := range []map[string]introspect.CIDR{e.AvailableIPv4Cidrs, e.IPv6Cidrs} {
				for _, ci := range cidrs {
					for _, a := range ci.IPAddresses {
						if a.UnassignedTime.IsZero() {
							continue
						}
						if at := a.UnassignedTime.Add(h.cfg.IPCooldown); !found || at.Before(first) {
							first, found = at, true
						}
					}
				}
			}
		}
	}
	return first, found
}

// addPods ADDs pods prefix0 … prefix(n-1), each of which must succeed.
func (h *harness) addPods(prefix string, n int) {
	h.t.Helper()
	for i := range n {
		if _, err := h.srv.AddNetwork(context.Background(), addReq(fmt.Sprint(prefix, i))); err != nil {
			h.t.Fatal(err)
		}
	}
}

// settle runs pool cycles until EC2's view stops changing (each cycle
// releases at most once and frees at most one ENI, as upstream's).
func (h *harness) settle() {
	h.t.Helper()
	prev := h.simCounts()
	for range 10 {
		h.n.PoolCycle(context.Background())
		now := h.simCounts()
		if now == prev {
			return
		}
		prev = now
	}
	h.t.Fatalf("pool did not settle: %+v", prev)
}

// expire makes every cooling address available by dropping cooldown: the
// datastore's clock is real time, so tests use IP_COOLDOWN_PERIOD=0 or
// wait. Here: a short sleep beyond the configured cooldown.
func (h *harness) expire() {
	time.Sleep(h.cfg.IPCooldown + 5*time.Millisecond)
}

// checkConsistent checks that the datastore, the checkpoint and vpcsim
// agree: the store holds exactly the CIDRs EC2 lists on each managed ENI,
// every assigned address lies in one of them, no address has two keys,
// and the checkpoint lists exactly the store's allocations.
func (h *harness) checkConsistent() {
	h.t.Helper()
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		h.t.Fatal(err)
	}
	ec2 := map[string]map[netip.Prefix]bool{}
	for _, e := range inst.ENIs {
		set := map[netip.Prefix]bool{}
		if h.cfg.EnableIPv6 {
			for _, p := range e.IPv6Prefixes {
				set[p] = true
			}
		} else {
			for _, a := range e.SecondaryIPs {
				set[netip.PrefixFrom(a, 32)] = true
			}
			for _, p := range e.Prefixes {
				set[p] = true
			}
		}
		ec2[e.ID] = set
	}
	owner := map[netip.Addr]datastore.Key{}
	var allocs []string
	snap := h.n.Snapshot()
	for _, c := range snap.Cards {
		for _, e := range c.ENIs {
			set, ok := ec2[e.ID]
			if !ok {
				h.t.Errorf("datastore has ENI %s that is not attached in EC2", e.ID)
				continue
			}
			have := map[netip.Prefix]bool{}
			for _, ci := range e.CIDRs {
				have[ci.Prefix] = true
				if !set[ci.Prefix] {
					h.t.Errorf("datastore has %s on %s; EC2 does not", ci.Prefix, e.ID)
				}
				for _, a := range ci.Allocations {
					if !ci.Prefix.Contains(a.Addr) {
						h.t.Errorf("allocation %s outside its CIDR %s", a.Addr, ci.Prefix)
					}
					if k, dup := owner[a.Addr]; dup {
						h.t.Errorf("address %s held by %s and %s", a.Addr, k, a.Key)
					}
					owner[a.Addr] = a.Key
					allocs = append(allocs, a.Key.String()+"="+a.Addr.String())
				}
			}
			for p := range set {
				if !have[p] {
					h.t.Errorf("EC2 lists %s on %s; the datastore does not", p, e.ID)
				}
			}
			delete(ec2, e.ID)
		}
	}
	for id := range ec2 {
		if !slices.Contains(snap.Cards[0].Unmanaged, id) {
			h.t.Errorf("ENI %s is attached in EC2 but not in the datastore", id)
		}
	}
	var cp []string
	for _, c := range snap.Cards {
		f, err := datastore.NewFileCheckpointer(datastore.CheckpointPath(h.cfg.BackingStore, c.Card)).Read()
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				h.t.Errorf("reading checkpoint of card %d: %v", c.Card, err)
			}
			continue
		}
		for _, a := range f.Allocations {
			cp = append(cp, a.Key.String()+"="+a.Addr.String())
		}
	}
	sort.Strings(cp)
	sort.Strings(allocs)
	if !slices.Equal(cp, allocs) {
		h.t.Errorf("checkpoint allocations differ from the datastore:\ncheckpoint %v\ndatastore  %v", cp, allocs)
	}
}

// pool is card i's pool as the daemon shows it.
func (h *harness) pool(i int) CardSnapshot {
	h.t.Helper()
	cards := h.n.Snapshot().Cards
	if i >= len(cards) {
		h.t.Fatalf("card %d: the daemon shows %d cards", i, len(cards))
	}
	return cards[i]
}

// state is card i's reason not to grow and its last EC2 failure.
func (h *harness) state(i int) (string, error) {
	h.t.Helper()
	cs := h.pool(i)
	if cs.LastErr != "" {
		return cs.Starved, errors.New(cs.LastErr)
	}
	return cs.Starved, nil
}

// eni is an ENI of card i as the daemon shows it.
func (h *harness) eni(i int, id string) (datastore.ENIInfo, bool) {
	h.t.Helper()
	for _, e := range h.pool(i).ENIs {
		if e.ID == id {
			return e, true
		}
	}
	return datastore.ENIInfo{}, false
}

// lookup is what k holds on card i.
func (h *harness) lookup(i int, k datastore.Key) (datastore.Allocation, bool) {
	h.t.Helper()
	for _, e := range h.pool(i).ENIs {
		for _, ci := range e.CIDRs {
			for _, a := range ci.Allocations {
				if a.Key == k {
					return a, true
				}
			}
		}
	}
	return datastore.Allocation{}, false
}

// leakedENIs lists ENIs in vpcsim that are not attached.
func (h *harness) unattachedENIs() []string {
	var out []string
	for _, e := range h.env.Sim.NetworkInterfaces() {
		if e.Attachment == nil {
			out = append(out, e.ID)
		}
	}
	return out
}

// otherEC2 is a plain SDK client for changes another tool makes in EC2
// behind ipamd's back.
func (h *harness) otherEC2() *ec2.Client {
	return ec2.New(ec2.Options{
		Region: "us-west-2", BaseEndpoint: aws.String(h.env.EC2URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDOTHER", "secret", ""),
	})
}

// vpcsimFaults injects code into every call of action.
func vpcsimFaults(action, code string) vpcsim.Faults {
	return vpcsim.Faults{Errors: []vpcsim.ErrorRule{{Action: action, Code: code}}}
}
