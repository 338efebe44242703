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

// Figure 21's node (bench/README.md): an m5.24xlarge with its whole pool
// warm and 250 live pods.
const (
	ckptLive = 250
	ckptWarm = 735
)

// ckptNode starts figure 21's node: ipamd with its log and checkpoint in
// the test's temporary directory (TMPDIR: put it on a disk to measure),
// its request log at DEBUG into a JSON file as ipamd writes it, its pool
// full and ckptLive pods holding addresses (added through add). ops ADDs
// must fit beside them while their addresses cool.
func ckptNode(b *testing.B, ops int, add func(h *harness, id string) error) *harness {
	logf, err := os.Create(filepath.Join(b.TempDir(), "ipamd.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = logf.Close() })
	h := newHarness(b, harnessOpts{
		// Production timers (a 5 s pool tick), as the figure's ipamd runs.
		instanceType: "m5.24xlarge", noInit: true, times: &Intervals{},
		log: slog.New(slog.NewJSONHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		cfg: func(c *config.Config) { c.WarmIPTarget = ckptWarm; c.IPCooldown = 30 * time.Second },
	})
	h.runDaemon()
	ctx := context.Background()
	if err := h.n.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	if ckptLive+ops > ckptWarm {
		b.Skipf("b.N %d: more ADDs than the pool holds while they cool; use -benchtime <= %dx", b.N, ckptWarm-ckptLive-(ops-b.N))
	}
	deadline := time.Now().Add(time.Minute)
	// The whole pool, as the figure's node has it: 15 ENIs × 49.
	for h.simCounts().IPs < ckptWarm {
		if time.Now().After(deadline) {
			b.Fatalf("the pool holds %d addresses after 1m, want %d", h.simCounts().IPs, ckptWarm)
		}
		h.n.PoolCycle(ctx)
	}
	for i := range ckptLive {
		if err := add(h, fmt.Sprint("live-", i)); err != nil {
			b.Fatal(err)
		}
	}
	return h
}

func ckptAddRequest(id string) *rpc.AddNetworkRequest {
	return &rpc.AddNetworkRequest{ContainerId: id, IfName: "eth0", NetworkName: "aws-cni",
		K8SPodNamespace: "bench", K8SPodName: "ckpt-" + id, K8SPodInfraContainerId: id}
}

func ckptDelRequest(id string) *rpc.DelNetworkRequest {
	return &rpc.DelNetworkRequest{ContainerId: id, IfName: "eth0", NetworkName: "aws-cni",
		K8SPodNamespace: "bench", K8SPodName: "ckpt-" + id, K8SPodInfraContainerId: id, Reason: "PodDeleted"}
}

// BenchmarkAddNetworkDurable is figure 21 in one process: on ckptNode, 3
// clients each on its own connection to the unix socket doing AddNetwork
// then DelNetwork. It reports the client's AddNetwork p50/p99 and is
// meant for -cpuprofile: where a request's time goes besides the disk's
// sync.
func BenchmarkAddNetworkDurable(b *testing.B) {
	const clients = 3
	ctx := context.Background()
	var conns []rpc.CNIBackendClient
	ckptNode(b, b.N+clients, func(h *harness, id string) error {
		if conns == nil {
			for range clients {
				conns = append(conns, rpc.NewCNIBackendClient(dial(b, h.cfg.SocketPath)))
			}
		}
		_, err := conns[0].AddNetwork(ctx, ckptAddRequest(id))
		return err
	})
	testutil.ConcurrentLatency(b, clients, "add", func(w int, i int64) (time.Duration, error) {
		c, id := conns[w], fmt.Sprint("churn-", i)
		start := time.Now()
		if _, err := c.AddNetwork(ctx, ckptAddRequest(id)); err != nil {
			return 0, err
		}
		took := time.Since(start)
		_, err := c.DelNetwork(ctx, ckptDelRequest(id))
		return took, err
	})
}

// BenchmarkAddDelHandlersDurable is ipamd's own share of figure 21's ADD
// and DEL without the gRPC transport: on ckptNode, one AddNetwork and one
// DelNetwork per op, called on the handlers. Its allocations per op are
// what ipamd's handlers, datastore and checkpoint allocate for a pair (its
// collections come from them and from the transport's).
func BenchmarkAddDelHandlersDurable(b *testing.B) {
	ctx := context.Background()
	h := ckptNode(b, b.N, func(h *harness, id string) error {
		_, err := h.srv.AddNetwork(ctx, ckptAddRequest(id))
		return err
	})
	adds, dels := make([]*rpc.AddNetworkRequest, b.N), make([]*rpc.DelNetworkRequest, b.N)
	for i := range adds {
		id := fmt.Sprint("churn-", i)
		adds[i], dels[i] = ckptAddRequest(id), ckptDelRequest(id)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := h.srv.AddNetwork(ctx, adds[i]); err != nil {
			b.Fatal(err)
		}
		if _, err := h.srv.DelNetwork(ctx, dels[i]); err != nil {
			b.Fatal(err)
		}
	}
}
