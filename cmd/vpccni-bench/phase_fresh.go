package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
)

func startFigure(c config) bench.Figure {
	ready := "the conflist written by localvpc once ipamd's health check passes (-agent ipamd)"
	if c.Agent == "installer" {
		ready = "the conflist, which ipamd writes once its health check answers SERVING (the aws-vpc-cni entrypoint installs the plugins and execs ipamd)"
	}
	return bench.Figure{
		ID: 3, Key: keyStart, Title: "node start to first pod address",
		Method: prose(`Node 'fresh' (m5.large, default targets WARM_ENI_TARGET=1, no checkpoint, only the primary ENI attached),
			no EC2 or IMDS delays. Wall time from starting the agent to: ipamd's gRPC health check saying SERVING
			(polled every 10 ms); the node being ready (%s); the end of the first successful libcni ADD, issued as
			soon as the node was ready. Figure 4 gives the same under realistic EC2 timing.`,
			ready),
	}
}

// phaseFresh measures figure 3 on the fresh node.
func (r *run) phaseFresh(ctx context.Context) {
	f := startFigure(r.cfg)
	r.progressf("figure 3: node start to first pod address (%s)", nodeTypes[nodeFresh])
	n, err := r.node(nodeFresh)
	if err != nil {
		r.fail(f, err)
		return
	}
	defer r.stopAgent(n)
	started, serving, err := r.startAgent(ctx, n, nil)
	if err != nil {
		r.fail(f, err)
		return
	}
	ready := time.Now()
	rt, err := newPodRuntime(r.v, n, &r.seq)
	if err != nil {
		r.fail(f, err)
		return
	}
	p, addTook, failures, err := addUntilSuccess(ctx, rt, 30*time.Second)
	if err != nil {
		r.fail(f, err)
		return
	}
	first := time.Now()
	deleteAll(ctx, rt, []*pod{p})
	f.Values = []bench.Value{
		bench.Seconds("to ipamd SERVING", serving.Sub(started)),
		bench.Seconds("to node ready", ready.Sub(started)),
		bench.Seconds("to first pod address", first.Sub(started)),
		bench.Millis("first ADD", addTook),
		bench.Count("failed ADDs before it", failures, "ADDs"),
	}
	r.put(f)
	r.progressf("  first pod %s after %.2fs", p.IP, first.Sub(started).Seconds())
}

// addUntilSuccess issues ADDs until one succeeds (as the kubelet retries a
// failed sandbox), for at most limit.
func addUntilSuccess(ctx context.Context, rt *podRuntime, limit time.Duration) (*pod, time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var errs []error
	for {
		p, t, err := rt.add(ctx)
		if err == nil {
			return p, t.CNI, len(errs), nil
		}
		errs = append(errs, err)
		select {
		case <-ctx.Done():
			return nil, 0, len(errs), fmt.Errorf("no successful ADD within %s: %w", limit, errors.Join(errs...))
		case <-time.After(100 * time.Millisecond):
		}
	}
}
