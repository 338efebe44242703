package ipamd

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// BenchmarkAddDelNetworkWarmPool measures one AddNetwork plus one
// DelNetwork over the real unix socket with a warm pool (the checkpoint's
// fsync included), the daemon's share of a pod's CNI ADD and DEL.
func BenchmarkAddDelNetworkWarmPool(b *testing.B) {
	h := newHarness(b, harnessOpts{noInit: true, cfg: func(c *config.Config) { c.WarmIPTarget = 5; c.IPCooldown = 0 }})
	h.runDaemon()
	cni := rpc.NewCNIBackendClient(dial(b, h.cfg.SocketPath))
	ctx := context.Background()
	warm, cancel := context.WithTimeout(ctx, 10*time.Second)
	if _, err := cni.AddNetwork(warm, &rpc.AddNetworkRequest{ContainerId: "warm", IfName: "eth0", NetworkName: "aws-cni"}); err != nil {
		b.Fatal(err)
	}
	cancel()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprint("b", i)
		if _, err := cni.AddNetwork(ctx, &rpc.AddNetworkRequest{ContainerId: id, IfName: "eth0", NetworkName: "aws-cni"}); err != nil {
			b.Fatal(err)
		}
		if _, err := cni.DelNetwork(ctx, &rpc.DelNetworkRequest{ContainerId: id, IfName: "eth0", NetworkName: "aws-cni"}); err != nil {
			b.Fatal(err)
		}
	}
}
