package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

func churnFigure(c config) bench.Figure {
	return bench.Figure{
		ID: 2, Key: keyChurn, Title: "sustained pod churn, one node",
		Method: fmt.Sprintf("Node 'churn' (m5.4xlarge, default targets: WARM_ENI_TARGET=1, %.0f s IP cooldown). ", ipCooldown.Seconds()) +
			churnMethod(c) + " " + churnCapText(nodeTypes[nodeChurn], c.ChurnLive, false),
	}
}

// churnMethod is how figures 2 and 13 churn.
func churnMethod(c config) string {
	return fmt.Sprintf("With %d pods live, "+
		"%d concurrent loops each DEL the oldest pod and ADD a new one through libcni, for %.0f s; the rate is completed "+
		"DEL+ADD pairs per second of wall time (the live count dips by at most %d while a loop is between its DEL and ADD). "+
		"A failed ADD is retried after 1 s, as kubelet would, for up to a minute, and counted as a first attempt failed; an ADD's latency "+
		"is its pod's wait from its first attempt to the end of its successful ADD. Latencies are of the same ADDs and DELs, under that concurrency.", c.ChurnLive, c.ChurnWorkers, c.Churn.Seconds(), c.ChurnWorkers)
}

func ec2Figure(c config) bench.Figure {
	return bench.Figure{
		ID: 5, Key: keyEC2, Title: "EC2 calls per 100 pods of churn",
		Method: "vpcsim's per-action call counters (Sim.Stats), difference over the churn of figure 2 (the only ipamd running), " +
			"divided by the DEL+ADD pairs completed, times 100; by action, then the total. Throttled calls are counted as calls and also on their own.",
	}
}

func idleFigure(c config) bench.Figure {
	first := "the first demand step"
	if len(c.Stages) > 0 {
		first = fmt.Sprintf("%d pods, %s after reaching them", c.Stages[0].Pods, c.Stages[0].Hold)
	}
	return bench.Figure{
		ID: 6, Key: keyIdle, Title: "idle addresses per node, default targets",
		Method: "Node 'churn' (m5.4xlarge, 30 addresses per ENI, WARM_ENI_TARGET=1 and no other target): secondary addresses " +
			"vpcsim has on the node's ENIs minus pods holding one, read from EC2's state (not ipamd's). At steady state with 0 pods " +
			"(pool settled after start) and with " + first + "; and the mean over the churn of figure 2 (its samples only), where addresses in cooldown count as idle. " +
			"'static algorithm (model)' is what the static warm-pool algorithm would hold over the same samples (bench.StaticPool: enough ENIs " +
			"that one whole ENI is free besides the pods and the addresses cooling 30 s after each of the churn's DELs, capped at the " +
			"instance's ENIs; it shrinks at once when demand falls, so it understates the real algorithm).",
	}
}

// livePods is the churn node's pods, oldest first.
type livePods struct {
	mu    sync.Mutex
	pods  []*pod
	count atomic.Int64 // pods holding an address (for the sampler)
}

func (l *livePods) push(p *pod) {
	l.mu.Lock()
	l.pods = append(l.pods, p)
	l.mu.Unlock()
	l.count.Add(1)
}

// pop takes the oldest (or newest) pod; the caller DELs it and then calls
// done.
func (l *livePods) pop(newest bool) *pod {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pods) == 0 {
		return nil
	}
	var p *pod
	if newest {
		p, l.pods = l.pods[len(l.pods)-1], l.pods[:len(l.pods)-1]
	} else {
		p, l.pods = l.pods[0], l.pods[1:]
	}
	return p
}

func (l *livePods) done() { l.count.Add(-1) }

func (l *livePods) all() []*pod {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*pod(nil), l.pods...)
}

// phaseChurn measures figures 2, 5 and 6 and records the plot's series.
func (r *run) phaseChurn(ctx context.Context) {
	chf, ecf, idf := churnFigure(r.cfg), ec2Figure(r.cfg), idleFigure(r.cfg)
	failAll := func(err error) {
		for _, f := range []bench.Figure{chf, ecf, idf} {
			r.fail(f, err)
		}
	}
	r.progressf("figures 2, 5, 6 and the plot: churn node (%s, default targets)", nodeTypes[nodeChurn])
	n, err := r.node(nodeChurn)
	if err != nil {
		failAll(err)
		return
	}
	defer r.stopAgent(n)
	if _, _, err := r.startAgent(ctx, n, nil); err != nil {
		failAll(err)
		return
	}
	pl0, stable, err := waitPoolStable(ctx, r.v.Sim, n.ID, 1, 3*time.Second, 20*time.Second)
	if err != nil {
		failAll(err)
		return
	}
	r.progressf("  pool at 0 pods: %d addresses on %d ENIs (settled: %v)", pl0.Held, pl0.ENIs, stable)
	rt, err := newPodRuntime(r.v, n, &r.seq)
	if err != nil {
		failAll(err)
		return
	}
	live := &livePods{}
	defer func() { deleteAll(ctx, rt, live.all()) }()
	smp := startSampler(r.v.Sim, n.ID,
		fmt.Sprintf("Warm pool following demand: node 'churn' (%s, WARM_ENI_TARGET=1), EC2's view", nodeTypes[nodeChurn]),
		r.cfg.SampleEvery, func() int { return int(live.count.Load()) })
	defer func() { _, _ = smp.finish() }() // on early returns; the series is taken below

	var (
		idleSteady, steadyPods int
		churned                *churnResult
		churnStart, churnEnd   time.Time
	)
	for i, st := range r.cfg.Stages {
		smp.mark(st.Label)
		r.progressf("  stage %q", st.Label)
		if err := scaleTo(ctx, rt, live, st.Pods); err != nil {
			if churned == nil || ctx.Err() != nil {
				failAll(fmt.Errorf("stage %q: %w", st.Label, err))
				return
			}
			// After the churn the stages only feed the plot: it ends here.
			r.progressf("  stage %q failed, the plot ends here: %v", st.Label, err)
			smp.mark(st.Label + " failed")
			break
		}
		if st.Churn {
			churnStart = time.Now()
			res := churn(ctx, rt, live, r.v.Sim, r.cfg.ChurnWorkers, r.cfg.Churn)
			churnEnd = time.Now()
			churned = &res
			r.progressf("  churn: %d pairs in %.1fs (%.1f/s), %d first attempts failed, %d failures", res.pairs, res.elapsed.Seconds(), res.rate(), res.firstFailed, res.failures)
			continue
		}
		sleepCtx(ctx, st.Hold)
		if i == 0 {
			pl, err := observePool(r.v.Sim, n.ID)
			if err != nil {
				failAll(err)
				return
			}
			idleSteady, steadyPods = pl.Held-int(live.count.Load()), st.Pods
		}
	}
	series, serr := smp.finish()
	if serr == nil && r.side.bins == nil {
		r.pool = &series
	}
	if ctx.Err() != nil {
		failAll(ctx.Err())
		return
	}
	if churned == nil {
		failAll(fmt.Errorf("no churn stage configured"))
		return
	}
	if churned.pairs == 0 {
		failAll(fmt.Errorf("no DEL+ADD pair succeeded during churn: %w", churned.firstErr))
		return
	}
	chf.Values = churned.values(r.cfg.ChurnLive, nodeTypes[nodeChurn], false)
	r.put(chf)

	per100 := func(n int64) float64 { return float64(n) * 100 / float64(churned.pairs) }
	actions := make([]string, 0, len(churned.calls))
	for a := range churned.calls {
		actions = append(actions, a)
	}
	sort.Strings(actions)
	for _, a := range actions {
		ecf.Values = append(ecf.Values, bench.Value{Name: a, Value: per100(churned.calls[a]), Unit: "calls"})
	}
	ecf.Values = append(ecf.Values,
		bench.Value{Name: "total", Value: per100(sumCalls(churned.calls)), Unit: "calls"},
		bench.Value{Name: "throttled", Value: per100(churned.throttled), Unit: "calls"})
	r.put(ecf)

	idf.Values = []bench.Value{
		bench.Count("0 pods", pl0.Held, "addresses"),
		bench.Count(fmt.Sprintf("%d pods", steadyPods), idleSteady, "addresses"),
	}
	if samples := smp.between(churnStart, churnEnd); len(samples) > 0 && serr == nil {
		var sum float64
		for _, s := range samples {
			sum += float64(s.Held - s.InUse)
		}
		idf.Values = append(idf.Values, bench.Value{Name: fmt.Sprintf("mean during churn at %d pods", r.cfg.ChurnLive), Value: sum / float64(len(samples)), Unit: "addresses"})
		if held, err := staticHeld(nodeTypes[nodeChurn], samples, smp.clock(churned.delDone)); err != nil {
			r.cfg.Log.Warn("static pool model", "err", err)
		} else {
			var idle float64
			for i, s := range samples {
				idle += float64(held[i] - s.InUse)
			}
			idf.Values = append(idf.Values, bench.Value{Name: "mean during churn, static algorithm (model)", Value: idle / float64(len(samples)), Unit: "addresses"})
			if r.side.bins == nil {
				addStatic(&series, samples[0].T, held)
			}
		}
	}
	r.put(idf)
}

// scaleTo ADDs or DELs pods one at a time until want are live; a failed
// ADD is retried after 1 s, as kubelet would.
func scaleTo(ctx context.Context, rt *podRuntime, live *livePods, want int) error {
	for int(live.count.Load()) < want {
		p, err := rt.addRetrying(ctx, time.Second, nil)
		if err != nil {
			return err
		}
		live.push(p)
	}
	for int(live.count.Load()) > want {
		p := live.pop(true)
		if p == nil {
			break
		}
		_, err := rt.del(ctx, p)
		live.done()
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

type churnResult struct {
	pairs, failures int // failures: DELs, and ADDs still failing after their retries
	firstFailed     int // ADDs whose first attempt failed
	elapsed         time.Duration
	adds, dels      []time.Duration
	delDone         []time.Time // when each successful DEL returned
	calls           map[string]int64
	throttled       int64
	firstErr        error
}

// values are figure 2's and 13's values for one churn on a node of the
// given type, with the cap that cooling addresses put on its rate.
func (c churnResult) values(live int, instanceType string, pd bool) []bench.Value {
	vs := []bench.Value{
		{Name: "DEL+ADD pairs per second", Value: c.rate(), Unit: "pods/s"},
		bench.Count("pods churned", c.pairs, "pods"),
		bench.Seconds("duration", c.elapsed),
		bench.Count("live pods", live, "pods"),
	}
	if cp, ok := churnCapFor(instanceType, live, pd); ok {
		vs = append(vs, bench.Value{Name: "cap: (held − live) / cooldown", Value: cp.Rate, Unit: "pods/s"})
	}
	if s, err := bench.Summarize(c.adds); err == nil {
		vs = append(vs, bench.Millis("ADD p50", s.P50), bench.Millis("ADD p99", s.P99))
	}
	if s, err := bench.Summarize(c.dels); err == nil {
		vs = append(vs, bench.Millis("DEL p50", s.P50), bench.Millis("DEL p99", s.P99))
	}
	return append(vs, bench.Count("first attempts failed", c.firstFailed, "ADDs"),
		bench.Count("failed ADDs or DELs", c.failures, "ops"))
}

func (c churnResult) rate() float64 {
	if c.elapsed <= 0 {
		return 0
	}
	return float64(c.pairs) / c.elapsed.Seconds()
}

// churn runs workers loops of DEL-oldest + ADD-new for d.
func churn(ctx context.Context, rt *podRuntime, live *livePods, sim *vpcsim.Sim, workers int, d time.Duration) churnResult {
	var (
		mu  sync.Mutex
		res churnResult
		wg  sync.WaitGroup
	)
	before := sim.Stats()
	start := time.Now()
	deadline := start.Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) && ctx.Err() == nil {
				if old := live.pop(false); old != nil {
					t, err := rt.del(ctx, old)
					live.done()
					mu.Lock()
					if err != nil {
						res.failures++
						res.firstErr = keepFirst(res.firstErr, err)
					} else {
						res.dels = append(res.dels, t.CNI)
						res.delDone = append(res.delDone, time.Now())
					}
					mu.Unlock()
				}
				p, took, failed, err := rt.addRetryingTimed(ctx, time.Second, nil)
				mu.Lock()
				if failed > 0 {
					res.firstFailed++
				}
				if err != nil {
					res.failures++
					res.firstErr = keepFirst(res.firstErr, err)
				} else {
					res.adds = append(res.adds, took)
					res.pairs++
				}
				mu.Unlock()
				if err == nil {
					live.push(p)
				}
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.calls, res.throttled = ec2Delta(before, sim.Stats())
	return res
}

// staticHeld is what the static algorithm holds at each sample
// (bench.StaticPool), with WARM_ENI_TARGET=1 and a 30 s cooldown.
func staticHeld(instanceType string, samples []bench.PoolSample, dels []float64) ([]int, error) {
	it, ok := vpcsim.LookupInstanceType(instanceType)
	if !ok {
		return nil, fmt.Errorf("instance type %s not in vpcsim's catalog", instanceType)
	}
	m := bench.StaticPool{PerENI: it.IPv4PerENI - 1, MaxENIs: it.MaxENIs, WarmENIs: 1, Cooldown: ipCooldown.Seconds()}
	return m.HeldAt(samples, dels)
}

// addStatic puts the model's values into the plotted series, from the
// sample at time from on.
func addStatic(series *bench.PoolSeries, from float64, held []int) {
	for i := range series.Samples {
		if series.Samples[i].T >= from && len(held) > 0 {
			series.Samples[i].Static, held = held[0], held[1:]
		}
	}
}
