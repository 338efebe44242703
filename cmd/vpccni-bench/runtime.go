package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
)

// podRuntime creates and deletes bench pods on one node through localvpc,
// which wires them as a container runtime on that node does. Each call
// returns localvpc's Timing: CNI is libcni's AddNetworkList or
// DelNetworkList wall time for the whole chain (figure 1), Exec(plugin)
// one plugin's own exec time within it. Creating and removing the pod's
// network namespace is outside both.
type podRuntime struct {
	v     *localvpc.VPC
	node  *localvpc.Node
	seq   *atomic.Int64 // pod names, unique per run
	names string        // the conflist's plugin chain
}

// pod is one pod sandbox created by podRuntime.
type pod = localvpc.Pod

func newPodRuntime(v *localvpc.VPC, n *localvpc.Node, seq *atomic.Int64) (*podRuntime, error) {
	conf, err := n.Conflist()
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(conf.Plugins))
	for _, p := range conf.Plugins {
		names = append(names, p.Network.Type)
	}
	return &podRuntime{v: v, node: n, seq: seq, names: strings.Join(names, ", ")}, nil
}

// add creates a pod. A failed ADD is timed too: localvpc DELs what it
// wired, as runtimes do, and its AddError carries the ADD's Timing. A
// failure before CNI ran (the netns) has a zero Timing.
func (r *podRuntime) add(ctx context.Context) (*pod, localvpc.Timing, error) {
	p, err := r.v.AddPod(ctx, r.node, "bench", fmt.Sprintf("pod-%d", r.seq.Add(1)))
	if err != nil {
		var ae *localvpc.AddError
		if errors.As(err, &ae) {
			return nil, ae.Timing, err
		}
		return nil, localvpc.Timing{}, err
	}
	return p, p.Added, nil
}

// addRetrying adds a pod; a failed ADD is retried after retry, as kubelet
// would, until it succeeds or a minute has passed. An agent may fail an
// ADD while its refill is in flight or its addresses cool (upstream's
// does: it counts cooling addresses toward its warm target). attempt, if
// set, sees every attempt's CNI time and error.
func (r *podRuntime) addRetrying(ctx context.Context, retry time.Duration, attempt func(time.Duration, error)) (*pod, error) {
	p, _, _, err := r.addRetryingTimed(ctx, retry, attempt)
	return p, err
}

// addRetryingTimed is addRetrying that also returns how long the pod
// waited, from its first attempt's start to the end of the successful
// ADD's CNI time (so, with no failure, that ADD's CNI time), and how many
// attempts failed.
func (r *podRuntime) addRetryingTimed(ctx context.Context, retry time.Duration, attempt func(time.Duration, error)) (*pod, time.Duration, int, error) {
	first := time.Now()
	deadline := first.Add(time.Minute)
	failed := 0
	for {
		start := time.Now()
		p, t, err := r.add(ctx)
		if attempt != nil {
			attempt(t.CNI, err)
		}
		if err == nil {
			return p, start.Sub(first) + t.CNI, failed, nil
		}
		failed++
		if ctx.Err() != nil || time.Now().After(deadline) {
			return nil, 0, failed, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(retry):
		}
	}
}

// del runs CNI DEL for a pod and removes its netns.
func (r *podRuntime) del(ctx context.Context, p *pod) (localvpc.Timing, error) {
	return r.v.DelPod(ctx, p)
}

// chain names the conflist's plugins in order.
func (r *podRuntime) chain() string { return r.names }

// version times one VERSION call of the named plugin through the same
// exec path as ADD and DEL: the plugin's start-up cost alone.
func (r *podRuntime) version(ctx context.Context, plugin string) (localvpc.Timing, error) {
	return r.v.CNIVersion(ctx, r.node, plugin)
}
