package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

func burstFigure(c config) bench.Figure {
	return bench.Figure{
		ID: 4, Key: keyBurst, Title: fmt.Sprintf("%d pods at once on a fresh node, realistic EC2", c.BurstPods),
		Method: prose(`Node 'burst' (m5.xlarge: 4 ENIs x 14 pod addresses, default targets WARM_ENI_TARGET=1), started fresh
			under %s. As soon as the node is ready (conflist written), %d libcni ADDs start at once, as a kubelet
			starts the pods waiting for a new node. A failed ADD is retried after 1 s, as kubelet would, for up to a
			minute (an agent that fails fast when no address is free, as upstream's does, is measured as kubelet
			sees it); each sample is one pod's wait, from its first attempt's start to the end of its successful
			ADD (its one ADD's wall time when that succeeds). Also the pods whose first attempt failed, the pods
			never wired, and the wall time from starting the agent to ready, to the first and to the last
			successful ADD.`,
			realisticFaultsText, c.BurstPods),
	}
}

func burstPDFigure(c config) bench.Figure {
	return bench.Figure{
		ID: 12, Key: keyBurstPD, Title: fmt.Sprintf("%d pods at once on a fresh node with prefix delegation, realistic EC2", c.BurstPDPods),
		Method: prose(`Node 'burst-pd' (m5.4xlarge: 8 ENIs, ENABLE_PREFIX_DELEGATION=true and WARM_PREFIX_TARGET=1 as in the
			aws-node manifest, addresses in /28 prefixes), started fresh under %s. As figure 4: %d libcni ADDs at
			once as soon as the node is ready, failed ADDs retried after 1 s for up to a minute, each sample one pod's
			wait from its first attempt to its successful ADD.`,
			realisticFaultsText, c.BurstPDPods),
	}
}

// phaseBurst measures figure 4 on the burst node under realistic faults.
func (r *run) phaseBurst(ctx context.Context) {
	r.burst(ctx, burstFigure(r.cfg), nodeBurst, r.cfg.BurstPods, nil)
}

// phaseBurstPD measures figure 12: the same with prefix delegation.
func (r *run) phaseBurstPD(ctx context.Context) {
	r.burst(ctx, burstPDFigure(r.cfg), nodeBurstPD, r.cfg.BurstPDPods, prefixDelegationEnv)
}

// burst starts the agent on a fresh node under realistic EC2 timing and
// ADDs pods at once.
func (r *run) burst(ctx context.Context, f bench.Figure, role string, count int, env []string) {
	r.progressf("figure %d: %d pods at once on a fresh %s under realistic EC2 timing", f.ID, count, nodeTypes[role])
	n, err := r.node(role)
	if err != nil {
		r.fail(f, err)
		return
	}
	if err := r.v.Sim.SetFaults(realisticFaults()); err != nil {
		r.fail(f, fmt.Errorf("vpcsim faults: %w", err))
		return
	}
	defer func() {
		if err := r.v.Sim.SetFaults(vpcsim.Faults{}); err != nil {
			r.cfg.Log.Error("clearing vpcsim faults", "err", err)
		}
	}()
	defer r.stopAgent(n)
	started, _, err := r.startAgent(ctx, n, env)
	if err != nil {
		r.fail(f, err)
		return
	}
	ready := time.Since(started)
	rt, err := newPodRuntime(r.v, n, &r.seq)
	if err != nil {
		r.fail(f, err)
		return
	}
	type outcome struct {
		p      *pod
		took   time.Duration
		end    time.Duration
		failed int // attempts that failed
		err    error
	}
	out := make([]outcome, count)
	var wg sync.WaitGroup
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, took, failed, err := rt.addRetryingTimed(ctx, time.Second, nil)
			out[i] = outcome{p: p, took: took, end: time.Since(started), failed: failed, err: err}
		}()
	}
	wg.Wait()
	var (
		lat         []time.Duration
		pods        []*pod
		errs        []error
		first, last time.Duration
		retried     int // pods whose first attempt failed
	)
	for _, o := range out {
		if o.failed > 0 {
			retried++
		}
		if o.err != nil {
			errs = append(errs, o.err)
			continue
		}
		lat = append(lat, o.took)
		pods = append(pods, o.p)
		if first == 0 || o.end < first {
			first = o.end
		}
		last = max(last, o.end)
	}
	deleteAll(ctx, rt, pods)
	if ctx.Err() != nil {
		r.fail(f, ctx.Err())
		return
	}
	if len(pods) == 0 {
		r.fail(f, fmt.Errorf("every ADD failed: %w", errors.Join(errs...)))
		return
	}
	s, err := bench.Summarize(lat)
	if err != nil {
		r.fail(f, err)
		return
	}
	f.Values = append(bench.LatencyValues("ADD ", s),
		bench.Count("first attempts failed", retried, "ADDs"),
		bench.Count("ADDs failed in the end", len(errs), "ADDs"),
		bench.Seconds("start to ready", ready),
		bench.Seconds("start to first pod address", first),
		bench.Seconds("start to last pod address", last),
	)
	r.put(f)
	if retried > 0 || len(errs) > 0 {
		r.progressf("  %d first attempts failed, %d ADDs failed in the end", retried, len(errs))
	}
	if len(errs) > 0 {
		r.progressf("  first ADD failed in the end: %v", errs[0])
	}
	r.progressf("  ADD p50 %s p99 %s; last pod after %.1fs", s.P50.Round(time.Millisecond), s.P99.Round(time.Millisecond), last.Seconds())
}
