package main

import (
	"context"
	"fmt"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
)

// prefixDelegationEnv is figures 12's and 13's ipamd environment, as the
// aws-node manifest sets it for prefix delegation.
var prefixDelegationEnv = []string{"ENABLE_PREFIX_DELEGATION=true", "WARM_PREFIX_TARGET=1"}

func churnPDFigure(c config) bench.Figure {
	return bench.Figure{
		ID: 13, Key: keyChurnPD, Title: "sustained pod churn with prefix delegation, one node",
		Method: fmt.Sprintf("Node 'churn-pd' (m5.4xlarge: 8 ENIs, ENABLE_PREFIX_DELEGATION=true and WARM_PREFIX_TARGET=1 as in "+
			"figure 12, addresses in /28 prefixes, %.0f s IP cooldown), started fresh, no EC2 delays, then scaled to the live pods one ADD at a time. "+
			"Figure 2's churn. ", ipCooldown.Seconds()) + churnMethod(c) +
			" EC2 calls are vpcsim's counters over the churn (all actions, throttled ones included); 'addresses held after churn' is EC2's view " +
			"(prefixes counted as 16) when the churn ends. " + churnCapText(nodeTypes[nodeChurnPD], c.ChurnLive, true),
	}
}

// phaseChurnPD measures figure 13: figure 2's churn on a fresh node with
// prefix delegation: cooling addresses cap it only once they fill the ENIs.
func (r *run) phaseChurnPD(ctx context.Context) {
	f := churnPDFigure(r.cfg)
	r.progressf("figure 13: churn with prefix delegation (%s)", nodeTypes[nodeChurnPD])
	n, err := r.node(nodeChurnPD)
	if err != nil {
		r.fail(f, err)
		return
	}
	defer r.stopAgent(n)
	if _, _, err := r.startAgent(ctx, n, prefixDelegationEnv); err != nil {
		r.fail(f, err)
		return
	}
	rt, err := newPodRuntime(r.v, n, &r.seq)
	if err != nil {
		r.fail(f, err)
		return
	}
	live := &livePods{}
	defer func() { deleteAll(ctx, rt, live.all()) }()
	if err := scaleTo(ctx, rt, live, r.cfg.ChurnLive); err != nil {
		r.fail(f, fmt.Errorf("scaling to %d pods: %w", r.cfg.ChurnLive, err))
		return
	}
	res := churn(ctx, rt, live, r.v.Sim, r.cfg.ChurnWorkers, r.cfg.Churn)
	r.progressf("  churn: %d pairs in %.1fs (%.1f/s), %d first attempts failed, %d failures", res.pairs, res.elapsed.Seconds(), res.rate(), res.firstFailed, res.failures)
	if ctx.Err() != nil {
		r.fail(f, ctx.Err())
		return
	}
	if res.pairs == 0 {
		r.fail(f, fmt.Errorf("no DEL+ADD pair succeeded during churn: %w", res.firstErr))
		return
	}
	f.Values = append(res.values(r.cfg.ChurnLive, nodeTypes[nodeChurnPD], true),
		bench.Count("EC2 calls", int(sumCalls(res.calls)), "calls"),
		bench.Count("EC2 calls throttled", int(res.throttled), "calls"))
	if pl, err := observePool(r.v.Sim, n.ID); err == nil {
		f.Values = append(f.Values, bench.Count("addresses held after churn", pl.Held, "addresses"))
	}
	r.put(f)
}
