package ipamd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/testutil"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// BenchmarkAddNetworkDurable is figure 21 (bench/README.md) in one
// process: ipamd on an m5.24xlarge with its whole pool warm, its log and
// checkpoint in the test's temporary directory (TMPDIR: put it on a disk
// to measure), its request log at DEBUG into a JSON file as ipamd writes
// it, 250 live pods, then 3 clients each on its own connection to the
// unix socket doing AddNetwork then DelNetwork. It reports the client's
// AddNetwork p50/p99 and is meant for -cpuprofile: where a request's time
// goes besides the disk's sync.
func BenchmarkAddNetworkDurable(b *testing.B) {
	const (
		live    = 250
		clients = 3
		warm    = 735
	)
	logf, err := os.Create(filepath.Join(b.TempDir(), "ipamd.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = logf.Close() })
	h := newHarness(b, harnessOpts{
		// Production timers (a 5 s pool tick), as the figure's ipamd runs.
		instanceType: "m5.24xlarge", noInit: true, times: &Intervals{},
		log: slog.New(slog.NewJSONHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		cfg: func(c *config.Config) { c.WarmIPTarget = warm; c.IPCooldown = 30 * time.Second },
	})
	h.runDaemon()
	ctx := context.Background()
	if err := h.n.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	need := live + b.N + clients
	if need > warm {
		b.Skipf("b.N %d: more ADDs than the pool holds while they cool; use -benchtime <= %dx", b.N, warm-live-clients)
	}
	deadline := time.Now().Add(time.Minute)
	// The whole pool, as the figure's node has it: 15 ENIs × 49.
	for h.simCounts().IPs < warm {
		if time.Now().After(deadline) {
			b.Fatalf("the pool holds %d addresses after 1m, want %d", h.simCounts().IPs, warm)
		}
		h.n.PoolCycle(ctx)
	}
	conns := make([]rpc.CNIBackendClient, clients)
	for i := range conns {
		conns[i] = rpc.NewCNIBackendClient(dial(b, h.cfg.SocketPath))
	}
	add := func(c rpc.CNIBackendClient, id string) error {
		_, err := c.AddNetwork(ctx, &rpc.AddNetworkRequest{ContainerId: id, IfName: "eth0", NetworkName: "aws-cni",
			K8SPodNamespace: "bench", K8SPodName: "ckpt-" + id, K8SPodInfraContainerId: id})
		return err
	}
	for i := range live {
		if err := add(conns[0], fmt.Sprint("live-", i)); err != nil {
			b.Fatal(err)
		}
	}
	testutil.ConcurrentLatency(b, clients, "add", func(w int, i int64) (time.Duration, error) {
		c, id := conns[w], fmt.Sprint("churn-", i)
		start := time.Now()
		if err := add(c, id); err != nil {
			return 0, err
		}
		took := time.Since(start)
		_, err := c.DelNetwork(ctx, &rpc.DelNetworkRequest{ContainerId: id, IfName: "eth0", NetworkName: "aws-cni",
			K8SPodNamespace: "bench", K8SPodName: "ckpt-" + id, K8SPodInfraContainerId: id, Reason: "PodDeleted"})
		return took, err
	})
}
