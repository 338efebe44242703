package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"syscall"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
)

// warmCooldownSeconds is the warm node's IP_COOLDOWN_PERIOD: short enough
// that figure 1's churn (batches of pods back to back) never finds every
// address of the node live or cooling.
const warmCooldownSeconds = 5

func latencyFigure(c config) bench.Figure {
	return bench.Figure{
		ID: 1, Key: keyLatency, Title: "CNI ADD and DEL latency, warm pool",
		Method: prose(`Node 'warm' (m5.4xlarge, WARM_IP_TARGET=%d, IP_COOLDOWN_PERIOD=%d), pool settled before the first pod.
			%d pods created and deleted in batches of %d (a batch is ADDed one pod at a time, then DELeted one at a
			time), so the node never holds more than its capacity. The cooldown is short here because this figure
			measures the ADD path, not the cooldown's cap: at about 20 pairs/s, with the default 30 s, a node's 232
			addresses would all be live or cooling within seconds, and ADDs would wait for cooldowns to end
			(figures 2 and 13 churn with the default). Each sample is the wall time of libcni
			AddNetworkList or DelNetworkList as a container runtime calls it, from the exec of the chain's plugins
			(each forked straight into the node's namespaces, one fork and one exec as on a real host) to the
			parsed result; the pod's netns is created/removed outside the timing. Percentiles by nearest rank. 'EC2
			calls' is every EC2 call made while the figure was measured. Baseline: %d libcni VERSION calls of aws-cni
			through the same exec path (the plugin's start-up alone). 'aws-cni ADD/DEL' is the exec of aws-cni alone
			within the same calls (without the rest of the chain), the part figure 11's floor stands for; its goals
			are ratios to figure 11.`,
			c.WarmIPs, warmCooldownSeconds, c.Pods, c.Batch, c.Versions),
	}
}

func restartFigure(c config) bench.Figure {
	return bench.Figure{
		ID: 8, Key: keyRestart, Title: "restart to ready, with checkpoint",
		Method: prose(`Node 'warm' with %d pods live: ipamd stopped with SIGTERM (then, second round, killed with SIGKILL),
			started again; wall time from the start to its gRPC health check saying SERVING (polled every 10 ms) and
			to the end of the first successful ADD after that. Then verified: every live pod is still in ipamd's
			checkpoint with the same address, EC2 still has that address on one of the node's ENIs, and the new pod
			got an address no live pod has.`,
			c.MemPods),
	}
}

// phaseWarm measures figures 1, 7 and 8 on the warm node.
func (r *run) phaseWarm(ctx context.Context) {
	lat, mem, rst := latencyFigure(r.cfg), memoryFigure(r.cfg), restartFigure(r.cfg)
	failAll := func(err error) {
		for _, f := range []bench.Figure{lat, mem, rst} {
			r.fail(f, err)
		}
	}
	r.progressf("figures 1, 7, 8: warm node (%s, WARM_IP_TARGET=%d)", nodeTypes[nodeWarm], r.cfg.WarmIPs)
	n, err := r.node(nodeWarm)
	if err != nil {
		failAll(err)
		return
	}
	env := []string{"WARM_IP_TARGET=" + strconv.Itoa(r.cfg.WarmIPs), "IP_COOLDOWN_PERIOD=" + strconv.Itoa(warmCooldownSeconds)}
	if r.side.bins == nil && r.cfg.Kube {
		kube, err := startKube(ctx, r.v, n)
		if err != nil {
			// Figures 1, 8 and 11 do not need it; figure 7's title says so.
			r.progressf("  no API server for figure 7: %v", err)
		}
		defer kube.stop()
		env = append(env, kube.agentEnv(n)...)
		if kube == nil {
			mem.Title += " (no API server)"
		} else {
			mem.Title += " (with kube-apiserver)"
		}
	} else if r.side.bins == nil {
		mem.Title += " (no API server)"
	}
	defer r.stopAgent(n) // before the API server stops
	if _, _, err := r.startAgent(ctx, n, env); err != nil {
		failAll(err)
		return
	}
	pl, stable, err := waitPoolStable(ctx, r.v.Sim, n.ID, r.cfg.WarmIPs, 2*time.Second, 30*time.Second)
	if err != nil {
		failAll(err)
		return
	}
	r.progressf("  pool: %d addresses on %d ENIs (settled: %v)", pl.Held, pl.ENIs, stable)
	mem0, memErr := r.agentMemory(n)
	rt, err := newPodRuntime(r.v, n, &r.seq)
	if err != nil {
		failAll(err)
		return
	}

	lat.Method += " Plugin chain: " + rt.chain() + "."
	flr := floorFigure(r.cfg)
	fr, ferr := newFloorRunner(r.v, n, r.cfg.FloorBin)
	if err := r.measureLatency(ctx, rt, fr, &lat); err != nil {
		r.fail(lat, err)
	} else {
		r.put(lat)
	}
	if ferr == nil {
		flr.Values, ferr = fr.values()
	}
	if ferr != nil {
		r.fail(flr, ferr)
	} else {
		r.put(flr)
	}

	// Figure 7: the pods stay for figure 8. Their ADDs are retried as
	// kubelet would: figure 1's last addresses may still be cooling.
	var live []*pod
	defer func() { deleteAll(ctx, rt, live) }()
	retried := 0
	for len(live) < r.cfg.MemPods && ctx.Err() == nil {
		p, err := rt.addRetrying(ctx, time.Second, func(_ time.Duration, err error) {
			if err != nil {
				retried++
			}
		})
		if err != nil {
			r.fail(mem, fmt.Errorf("adding pod %d of %d: %w", len(live)+1, r.cfg.MemPods, err))
			r.fail(rst, fmt.Errorf("needs %d live pods: %w", r.cfg.MemPods, err))
			return
		}
		live = append(live, p)
	}
	if retried > 0 {
		r.progressf("  %d pods for figure 7: %d failed ADDs retried", r.cfg.MemPods, retried)
	}
	sleepCtx(ctx, 2*time.Second)
	memN, err := r.agentMemory(n)
	sizes, serr := r.binarySizes()
	if err = errors.Join(memErr, err, serr, ctx.Err()); err != nil {
		r.fail(mem, err)
	} else {
		mem.Values = append(memValues("0 pods", mem0), memValues(fmt.Sprintf("%d pods", r.cfg.MemPods), memN)...)
		mem.Values = append(mem.Values, sizes...)
		r.put(mem)
	}

	// Figure 8.
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if ctx.Err() != nil {
			r.fail(rst, ctx.Err())
			return
		}
		res, err := r.restart(ctx, n, rt, env, sig, live)
		if err != nil {
			r.fail(rst, fmt.Errorf("%s restart: %w", signalName(sig), err))
			return
		}
		name := signalName(sig)
		rst.Values = append(rst.Values,
			bench.Seconds(name+": to SERVING", res.serving),
			bench.Seconds(name+": to first ADD", res.firstAdd),
			bench.Count(name+": pods kept address", res.kept, fmt.Sprintf("of %d", len(live))),
			bench.Count(name+": failed ADDs", res.failures, "ADDs"),
		)
		live = append(live, res.newPod)
		r.progressf("  %s restart: SERVING after %.2fs, first ADD after %.2fs, %d/%d pods kept their address",
			name, res.serving.Seconds(), res.firstAdd.Seconds(), res.kept, len(live)-1)
	}
	r.put(rst)
}

// measureLatency fills figure 1: the VERSION baseline, then ADD/DEL in
// batches, each pod followed by a floor pod (fr, if not nil) so that both
// see the same conditions.
func (r *run) measureLatency(ctx context.Context, rt *podRuntime, fr *floorRunner, lat *bench.Figure) error {
	var versions []time.Duration
	for range r.cfg.Versions {
		t, err := rt.version(ctx, localvpc.PluginBin)
		if err != nil {
			return err
		}
		versions = append(versions, t.CNI)
	}
	before := r.v.Sim.Stats()
	var (
		adds, dels       []time.Duration
		pAdds, pDels     []time.Duration // aws-cni's own exec
		addFail, delFail int
		firstErr         error
	)
	for done := 0; done < r.cfg.Pods && ctx.Err() == nil; {
		k := min(r.cfg.Batch, r.cfg.Pods-done)
		batch := make([]*pod, 0, k)
		for range k {
			p, t, err := rt.add(ctx)
			if err != nil {
				addFail++
				firstErr = keepFirst(firstErr, err)
				continue
			}
			adds = append(adds, t.CNI)
			if d, ok := t.Exec(localvpc.PluginBin); ok {
				pAdds = append(pAdds, d)
			}
			batch = append(batch, p)
		}
		for _, p := range batch {
			t, err := rt.del(ctx, p)
			if err != nil {
				delFail++
				firstErr = keepFirst(firstErr, err)
				continue
			}
			dels = append(dels, t.CNI)
			if d, ok := t.Exec(localvpc.PluginBin); ok {
				pDels = append(pDels, d)
			}
			if fr != nil {
				fr.pair(ctx)
			}
		}
		done += k
		if done%(5*r.cfg.Batch) == 0 || done == r.cfg.Pods {
			r.progressf("  %d/%d pods", done, r.cfg.Pods)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	calls, _ := ec2Delta(before, r.v.Sim.Stats())
	addSum, err1 := bench.Summarize(adds)
	delSum, err2 := bench.Summarize(dels)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("no successful ADD or DEL: %w", errors.Join(firstErr, err1, err2))
	}
	if firstErr != nil {
		r.progressf("  first failure: %v", firstErr)
	}
	lat.Values = append(lat.Values, bench.LatencyValues("ADD ", addSum)...)
	lat.Values = append(lat.Values, bench.LatencyValues("DEL ", delSum)...)
	if s, err := bench.Summarize(pAdds); err == nil {
		lat.Values = append(lat.Values, bench.LatencyValues("aws-cni ADD ", s)...)
	}
	if s, err := bench.Summarize(pDels); err == nil {
		lat.Values = append(lat.Values, bench.LatencyValues("aws-cni DEL ", s)...)
	}
	if vs, err := bench.Summarize(versions); err == nil {
		lat.Values = append(lat.Values, bench.Millis("aws-cni VERSION p50", vs.P50), bench.Millis("aws-cni VERSION p99", vs.P99))
	}
	lat.Values = append(lat.Values,
		bench.Count("failed ADDs", addFail, "ADDs"), bench.Count("failed DELs", delFail, "DELs"),
		bench.Count("EC2 calls", int(sumCalls(calls)), "calls"))
	return nil
}

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGKILL:
		return "SIGKILL"
	}
	return sig.String()
}

type restartResult struct {
	serving, firstAdd time.Duration
	kept, failures    int
	newPod            *pod
}

// restart stops ipamd with sig, starts it again and times it; then checks
// what the live pods kept.
func (r *run) restart(ctx context.Context, n *localvpc.Node, rt *podRuntime, env []string, sig syscall.Signal, live []*pod) (restartResult, error) {
	var res restartResult
	if err := r.v.StopAgent(n, sig, 10*time.Second); err != nil {
		return res, err
	}
	start := time.Now()
	if err := r.launch(ctx, n, env); err != nil {
		return res, err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := waitServing(wctx, n); err != nil {
		return res, err
	}
	res.serving = time.Since(start)
	p, _, failures, err := addUntilSuccess(ctx, rt, 30*time.Second)
	if err != nil {
		return res, err
	}
	res.firstAdd, res.failures, res.newPod = time.Since(start), failures, p

	cp, err := n.Checkpoint()
	if err != nil {
		return res, err
	}
	held := map[netip.Addr]bool{}
	for _, e := range r.v.ENIs(n) {
		for _, a := range e.SecondaryIPs {
			held[a] = true
		}
	}
	inUse := map[netip.Addr]bool{}
	for _, lp := range live {
		inUse[lp.IP] = true
		if cp[lp.ContainerID] == lp.IP && held[lp.IP] {
			res.kept++
		}
	}
	if inUse[p.IP] {
		return res, fmt.Errorf("the pod ADDed after the restart got %s, which live pod already has", p.IP)
	}
	return res, nil
}

func mib(name string, bytes int64) bench.Value {
	return bench.Value{Name: name, Value: float64(bytes) / (1 << 20), Unit: "MiB"}
}

// keepFirst returns first, or err when there is no first error yet.
func keepFirst(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
