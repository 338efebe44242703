package ipamd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/podnet"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// fakeLinks is the host's link list as PodLinks sees it: the suffixes of
// the pods' host veths, and the marks some carry. The real lister
// (cmd/ipamd) lists the kernel's links.
type fakeLinks struct {
	mu    sync.Mutex
	set   map[string]bool
	marks map[string]string // suffix → alias, for links in set
	// more lists, per suffix in set, the aliases of further links of the
	// same suffix, in the order the kernel lists them after the first.
	more   map[string][]string
	routes []PodRoute
	err    error
	calls  int
}

func newFakeLinks() *fakeLinks { return &fakeLinks{set: map[string]bool{}} }

func (f *fakeLinks) LinkSuffixes(context.Context) (map[string][]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	out := make(map[string][]string, len(f.set))
	for s, ok := range f.set {
		if ok {
			out[s] = append([]string{f.marks[s]}, f.more[s]...)
		}
	}
	return out, nil
}

// mark makes the link with suffix sfx present with sandbox's mark as its
// alias (our plugin's mark of sandbox's host veths).
func (f *fakeLinks) mark(sfx, sandbox string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.marks == nil {
		f.marks = map[string]string{}
	}
	f.set[sfx] = true
	f.marks[sfx] = podnet.SandboxMark(sandbox)
}

func (f *fakeLinks) PodRoutes(context.Context) ([]PodRoute, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return slices.Clone(f.routes), nil
}

// setPod adds or removes pod i's host veth (as setPods names pods).
func (f *fakeLinks) setPod(i int, present bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := vethname.Suffix("default", fmt.Sprint("pod-", i))
	if present {
		f.set[s] = true
	} else {
		delete(f.set, s)
	}
}

func (h *harness) holds(k datastore.Key) bool {
	for i := range h.n.Snapshot().Cards {
		if _, ok := h.lookup(i, k); ok {
			return true
		}
	}
	return false
}

// TestOrphanSweepDecisions: only an allocation whose pod veth stayed
// absent for the grace period, and which is itself older than the grace
// period, is released; a present veth resets the clock; pods without a
// name are never judged; a failed link listing releases nothing.
func TestOrphanSweepDecisions(t *testing.T) {
	links := newFakeLinks()
	times := fastTimes
	times.OrphanGrace = time.Minute
	h := newHarness(t, harnessOpts{links: links, times: &times})
	pods := map[int]bool{}
	h.setPods(pods, 4)
	links.setPod(0, true) // live
	links.setPod(3, true) // comes and goes
	anon := datastore.Key{NetworkName: "aws-cni", ContainerID: "no-meta", IfName: "eth0"}
	ctx := context.Background()
	if _, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: anon.NetworkName, ContainerId: anon.ContainerID,
		IfName: anon.IfName}); err != nil {
		t.Fatal(err)
	}
	sw := h.n.orphans                 // no loop runs in the harness: the test drives the sweep's clock
	t0 := time.Now().Add(time.Minute) // the allocations are older than the grace
	sweep := func(at time.Duration) {
		t.Helper()
		if err := sw.sweep(ctx, t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	sweep(0)
	links.setPod(3, false)
	sweep(30 * time.Second)
	for i := range 4 {
		if !h.holds(podKey(i)) {
			t.Fatalf("pod %d released before its grace period", i)
		}
	}
	links.setPod(3, true) // back before the grace ended: the clock restarts
	sweep(50 * time.Second)
	links.setPod(3, false)
	links.mu.Lock()
	links.err = errors.New("netlink: dump interrupted")
	links.mu.Unlock()
	if err := sw.sweep(ctx, t0.Add(61*time.Second)); err == nil {
		t.Error("a failed link listing must be reported")
	}
	links.mu.Lock()
	links.err = nil
	links.mu.Unlock()
	sweep(61 * time.Second)
	want := map[int]bool{0: true, 1: false, 2: false, 3: true}
	for i, held := range want {
		if h.holds(podKey(i)) != held {
			t.Errorf("pod %d held=%v after 61 s, want %v", i, !held, held)
		}
	}
	if !h.holds(anon) {
		t.Error("an allocation without a pod name was released")
	}
	sweep(200 * time.Second)
	if h.holds(podKey(3)) || !h.holds(podKey(0)) {
		t.Errorf("after 200 s: pod 3 held=%v (want false), pod 0 held=%v (want true)", h.holds(podKey(3)), h.holds(podKey(0)))
	}
	if got := counterValue(t, h.n.metrics.OrphanReleases); got != 3 {
		t.Errorf("vpccni_orphaned_addresses_released_total = %v, want 3", got)
	}
	// A pod assigned just now has no veth yet: the grace covers it too.
	fresh := podKey(100)
	if _, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: fresh.NetworkName, ContainerId: fresh.ContainerID,
		IfName: fresh.IfName, K8SPodNamespace: "default", K8SPodName: "new"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, at := range []time.Duration{0, 59 * time.Second} {
		if err := sw.sweep(ctx, now.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	if !h.holds(fresh) {
		t.Error("a pod younger than the grace period was released")
	}
	h.checkConsistent()
}

// TestRestartRaceDELReleasedBySweep: DELs sent while ipamd restarts reach
// no socket (the plugin then reports success and removes the pod's veth).
// Pods whose veth is gone when ipamd restores are dropped then; pods
// whose veth goes just after the restore are released by the orphan sweep
// within the grace period; a live pod keeps its address; and once the
// pods are gone no ENI is held in EC2.
func TestRestartRaceDELReleasedBySweep(t *testing.T) {
	links := newFakeLinks()
	times := fastTimes
	times.OrphanSweep = 20 * time.Millisecond
	times.OrphanGrace = 500 * time.Millisecond
	times.Pool = 50 * time.Millisecond
	h := newHarness(t, harnessOpts{links: links, times: &times, cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	h.settle()
	base := h.simCounts() // the warm pool with no pod
	pods := map[int]bool{}
	h.setPods(pods, 13) // m5.large: 9 on the primary ENI, 4 on a second
	for i := range 13 {
		links.setPod(i, true)
	}
	if got := h.simCounts(); got.ENIs < 2 {
		t.Fatalf("setup: %+v, want more than the primary ENI", got)
	}

	// Restart; the new ipamd's socket is not there yet (the delayed bind).
	h.connect(times)
	ctx := context.Background()
	cni := rpc.NewCNIBackendClient(dial(t, h.cfg.SocketPath))
	for i := range 12 {
		dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err := cni.DelNetwork(dctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: podKey(i).ContainerID,
			IfName: "eth0", K8SPodNamespace: "default", K8SPodName: fmt.Sprint("pod-", i)})
		cancel()
		if err == nil {
			t.Fatalf("DEL of pod %d reached an ipamd during the gap", i)
		}
		if i < 6 {
			links.setPod(i, false) // the plugin's teardown, before ipamd looks
		}
	}
	h.runDaemon()
	waitFor(t, 20*time.Second, "ipamd ready", h.n.Ready)
	for i := range 13 {
		if want := i >= 6; h.holds(podKey(i)) != want {
			t.Errorf("after restore: pod %d held=%v, want %v", i, !want, want)
		}
	}
	// The teardown of pods 6-11 lands just after ipamd's look.
	gone := time.Now()
	for i := 6; i < 12; i++ {
		links.setPod(i, false)
	}
	waitFor(t, times.OrphanGrace+15*time.Second, "orphaned pods released", func() bool {
		for i := 6; i < 12; i++ {
			if h.holds(podKey(i)) {
				return false
			}
		}
		return true
	})
	if took := time.Since(gone); took < times.OrphanGrace {
		t.Errorf("orphans released after %s, before the %s grace period", took, times.OrphanGrace)
	}
	if !h.holds(podKey(12)) {
		t.Fatal("the live pod lost its address")
	}
	// The live pod's DEL, now served; then the pool drains to its start.
	cni = rpc.NewCNIBackendClient(dial(t, h.cfg.SocketPath))
	if _, err := cni.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: podKey(12).ContainerID, IfName: "eth0"}); err != nil {
		t.Fatalf("DEL of the live pod: %v", err)
	}
	waitFor(t, 20*time.Second, fmt.Sprintf("EC2 back to the start-up pool %+v", base), func() bool {
		// A freed ENI is detached, then deleted: wait for both.
		return h.simCounts() == base && len(h.unattachedENIs()) == 0
	})
	if st := h.pool(0).Stats; st.AssignedIPs != 0 || st.Pods != 0 {
		t.Errorf("datastore after the race: %+v", st)
	}
	if got := counterValue(t, h.n.metrics.OrphanReleases); got != 6 {
		t.Errorf("vpccni_orphaned_addresses_released_total = %v, want 6", got)
	}
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// counterValue reads a counter or gauge.
func counterValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
