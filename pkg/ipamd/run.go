package ipamd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vpc-cni/vpc-cni/pkg/introspect"
)

// DrainTimeout bounds how long in-flight gRPC calls may finish after ctx
// ends.
const DrainTimeout = 10 * time.Second

// Run serves gRPC on l while initialising the node, then runs the pool
// manager, the reconciler and the leaked-ENI sweeper until ctx ends. When
// ctx ends (SIGTERM), attach and free stop at once, the server drains and
// every loop returns. An Init failure ends Run with that error.
func (n *IPAM) Run(ctx context.Context, l net.Listener) error {
	srv := NewServer(n)
	g, gctx := errgroup.WithContext(ctx)
	if n.metricsL != nil || n.metricsListen != nil {
		g.Go(func() error {
			keepServing(gctx, "metrics", n.metricsL, n.metricsListen, n.metrics.ServeListener, n.log)
			return nil
		})
	}
	if n.introL != nil || n.introListen != nil {
		ilog := n.log.With("component", "introspection")
		g.Go(func() error {
			keepServing(gctx, "introspection", n.introL, n.introListen, func(ctx context.Context, l net.Listener) error {
				return introspect.Serve(ctx, l, n.Introspection(), ilog)
			}, n.log)
			return nil
		})
	}
	g.Go(func() error {
		defer n.Terminate() // the server stopped: no attach or free either
		return srv.Serve(gctx, l, DrainTimeout)
	})
	g.Go(func() error {
		if err := n.Init(gctx); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			n.observe.startup(err)
			return err
		}
		n.observe.startup(nil)
		n.pool.Fire() // fill the pool at once
		loops, lctx := errgroup.WithContext(gctx)
		loops.Go(func() error {
			n.pool.Run(lctx, n.times.Pool, 0, n.PoolCycle)
			return nil
		})
		loops.Go(func() error {
			n.reconciler.run(lctx)
			return nil
		})
		loops.Go(func() error {
			n.leaked.run(lctx)
			return nil
		})
		loops.Go(func() error {
			n.orphans.run(lctx)
			return nil
		})
		loops.Go(func() error {
			n.cpHealth.runProbe(lctx, n.cards, n.times.CheckpointRetry, n.log)
			return nil
		})
		loops.Go(func() error {
			n.restore.dropPendingAfter(lctx)
			return nil
		})
		loops.Go(func() error {
			n.refresh.run(lctx)
			return nil
		})
		return loops.Wait()
	})
	stop := context.AfterFunc(ctx, n.Terminate) // no goroutine left behind if Run ends first
	defer stop()
	err := g.Wait()
	// Every writer has stopped with the server and the loops: fold the logs.
	n.cards.close(n.log)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ipamd: %w", err)
	}
	return nil
}
