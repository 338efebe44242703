package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
)

// serving asks ipamd's grpc.health.v1 service on the node's socket; nil
// means SERVING.
func serving(ctx context.Context, sock string) error {
	if _, err := os.Stat(sock); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("health: %s", resp.GetStatus())
	}
	return nil
}

// waitServing polls the health check every 10 ms (finer than localvpc's
// WaitReady) and returns when ipamd reports SERVING.
func waitServing(ctx context.Context, n *localvpc.Node) error {
	exited, exitErr := n.AgentExited()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := serving(ctx, n.SocketPath())
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s: ipamd not serving: %w (last check: %v; see %s)", n.Name, ctx.Err(), err, n.LogHint())
		case <-exited:
			return fmt.Errorf("node %s: ipamd exited: %v (see %s)", n.Name, exitErr(), n.LogHint())
		case <-tick.C:
		}
	}
}

// pool is what EC2 (vpcsim) says a node holds.
type pool struct {
	Held int // secondary IPv4 addresses, /28 prefixes counted as 16
	ENIs int
}

func observePool(sim *vpcsim.Sim, nodeID string) (pool, error) {
	in, err := sim.Instance(nodeID)
	if err != nil {
		return pool{}, fmt.Errorf("node %s: %w", nodeID, err)
	}
	var p pool
	for _, e := range in.ENIs {
		p.ENIs++
		p.Held += len(e.SecondaryIPs)
		for _, pf := range e.Prefixes {
			if pf.Addr().Is4() {
				p.Held += 1 << (32 - pf.Bits())
			}
		}
	}
	return p, nil
}

// waitPoolStable waits until the node's pool has held at least minHeld
// addresses without change for quiet, or until limit; it returns the last
// observation and whether it was stable.
func waitPoolStable(ctx context.Context, sim *vpcsim.Sim, nodeID string, minHeld int, quiet, limit time.Duration) (pool, bool, error) {
	deadline := time.Now().Add(limit)
	last, err := observePool(sim, nodeID)
	if err != nil {
		return last, false, err
	}
	since := time.Now()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return last, false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		p, err := observePool(sim, nodeID)
		if err != nil {
			return p, false, err
		}
		if p != last {
			last, since = p, time.Now()
			continue
		}
		if p.Held >= minHeld && time.Since(since) >= quiet {
			return p, true, nil
		}
	}
	return last, false, nil
}

func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, t := range tasks {
		data, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
