package ipamd

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/rpc"
)

// BenchmarkRequestLogLine is the cost of AddNetwork's log line at DEBUG
// (upstream's default level) into a JSON handler: next to the checkpoint's
// fsync per request, it must not matter.
func BenchmarkRequestLogLine(b *testing.B) {
	s := &Server{n: &IPAM{log: slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))}}
	req := &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "0123456789abcdef", IfName: "eth0", K8SPodNamespace: "default", K8SPodName: "web-1"}
	r := &rpc.AddNetworkReply{Success: true, IpAllocationMetadata: []*rpc.IPAllocationMetadata{{Ipv4Addr: "10.0.3.7"}}}
	ctx := context.Background()
	start := time.Now()
	b.ReportAllocs()
	for range b.N {
		s.logAdd(ctx, req, r, "", nil, start)
	}
}
