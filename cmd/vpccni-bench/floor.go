package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/bench"
	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/dataplane"
)

const keyFloor = "kernel_floor"

// floorInNode is where the floor binary is installed on the node: beside
// the plugin, so both are exec'd from the same directory the same way.
const floorInNode = localvpc.NodeCNIBinDir + "/bench-floor"

func floorFigure(c config) bench.Figure {
	return bench.Figure{
		ID: 11, Key: keyFloor, Title: "kernel floor: a trivial static binary's exec + the plugin's netlink wiring",
		Method: prose(`cmd/vpccni-bench/floor, built static like the plugin (CGO_ENABLED=0), wires one pod with the plugin's own
			netlink code (pkg/podnet: veth pair, addresses, routes, rules) and nothing else: no CNI library, no gRPC,
			no logging. On node 'warm', interleaved with figure 1 (after each pod's CNI DEL, one floor ADD and one
			floor DEL; %d of each), exec'd from the node's %s through the same path as the plugin (forked straight
			into the node's namespaces), in a netns of its own created outside the timing. Each sample is the exec's wall
			time. Figure 1's goals are ratios to these values.`,
			c.Pods, localvpc.NodeCNIBinDir),
	}
}

// floorRunner wires and unwires floor pods on one node.
type floorRunner struct {
	node   *localvpc.Node
	prefix string // netns names
	seq    int

	adds, dels []time.Duration
	firstErr   error
}

// newFloorRunner installs the floor binary on the node.
func newFloorRunner(v *localvpc.VPC, n *localvpc.Node, bin string) (*floorRunner, error) {
	if bin == "" {
		return nil, fmt.Errorf("no floor binary given (scripts/bench.sh builds bin/floor from cmd/vpccni-bench/floor)")
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("floor binary: %w", err)
	}
	if err := os.WriteFile(filepath.Join(n.HostPath(localvpc.NodeCNIBinDir), filepath.Base(floorInNode)), data, 0o755); err != nil {
		return nil, fmt.Errorf("installing the floor binary on %s: %w", n.Name, err)
	}
	return &floorRunner{node: n, prefix: dataplane.RunPrefix(v.RunID)}, nil
}

// pair wires one floor pod (timed), unwires it (timed) and removes its
// netns (untimed). Failures are kept, not returned: the floor is a
// reference, figure 1 goes on without it.
func (f *floorRunner) pair(ctx context.Context) {
	f.seq++
	ns, err := dataplane.NewNamedNS(fmt.Sprintf("%sfloor-%d", f.prefix, f.seq))
	if err != nil {
		f.firstErr = keepFirst(f.firstErr, err)
		return
	}
	defer func() { _ = dataplane.DeleteNamedNS(ns) }() // the VPC's Close removes what is left
	env := []string{"CNI_NETNS=" + ns, "CNI_IFNAME=eth0", "FLOOR_TABLE=254", fmt.Sprintf("CNI_CONTAINERID=floor-%d", f.seq),
		fmt.Sprintf("FLOOR_IP=198.18.%d.%d", f.seq/250%250, 1+f.seq%250),
		// A pod veth's name shape (prefix + 11 hex), or DEL leaves its route.
		fmt.Sprintf("FLOOR_VETH=flr%011x", f.seq)}
	for _, cmd := range []string{"ADD", "DEL"} {
		start := time.Now()
		_, stderr, err := f.node.Exec(ctx, append(env, "CNI_COMMAND="+cmd), nil, floorInNode)
		took := time.Since(start)
		if err != nil {
			f.firstErr = keepFirst(f.firstErr, fmt.Errorf("floor %s: %w: %s", cmd, err, stderr))
			return
		}
		if cmd == "ADD" {
			f.adds = append(f.adds, took)
		} else {
			f.dels = append(f.dels, took)
		}
	}
}

func (f *floorRunner) values() ([]bench.Value, error) {
	add, err1 := bench.Summarize(f.adds)
	del, err2 := bench.Summarize(f.dels)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("no floor sample: %w", keepFirst(f.firstErr, err1))
	}
	return append(bench.LatencyValues("ADD ", add), bench.LatencyValues("DEL ", del)...), nil
}
