package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Exit codes of grpc-health-probe, which probes in existing manifests expect.
const (
	probeBadArgs    = 1
	probeConnFailed = 2
	probeRPCFailed  = 3
	probeUnhealthy  = 4
)

// runProbe is a grpc-health-probe compatible check (same flags and exit
// codes), so liveness/readiness probes need no separate binary.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("grpc-health-probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "", "gRPC server address, e.g. unix:///var/run/aws-node/ipamd.sock (required)")
	service := fs.String("service", "", "service name to check")
	userAgent := fs.String("user-agent", "grpc_health_probe", "user agent")
	connTimeout := fs.Duration("connect-timeout", time.Second, "timeout for establishing the connection")
	rpcTimeout := fs.Duration("rpc-timeout", time.Second, "timeout for the health check RPC")
	verbose := fs.Bool("v", false, "verbose logs")
	// Not upstream's: for the liveness probe. ipamd answers NOT_SERVING
	// while it cannot write its checkpoint; that must take the node out of
	// service (readiness) but not restart the container, which cannot
	// repair a read-only mount and would only crash-loop.
	alive := fs.Bool("alive", false, "succeed on any health answer, NOT_SERVING included (liveness)")
	if err := fs.Parse(args); err != nil {
		return probeBadArgs
	}
	if *addr == "" {
		fmt.Fprintln(stderr, "error: -addr not specified")
		return probeBadArgs
	}
	if *connTimeout <= 0 || *rpcTimeout <= 0 {
		fmt.Fprintln(stderr, "error: -connect-timeout and -rpc-timeout must be positive")
		return probeBadArgs
	}
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUserAgent(*userAgent))
	if err != nil {
		fmt.Fprintf(stderr, "error: %s: %v\n", *addr, err)
		return probeBadArgs
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, *connTimeout)
	defer cancel()
	if err := waitReady(cctx, conn); err != nil {
		fmt.Fprintf(stderr, "error: connection to %s failed within %v: %v\n", *addr, *connTimeout, err)
		return probeConnFailed
	}
	rctx, cancel := context.WithTimeout(ctx, *rpcTimeout)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(rctx, &healthpb.HealthCheckRequest{Service: *service})
	if err != nil {
		fmt.Fprintf(stderr, "error: health rpc failed: %v\n", err)
		return probeRPCFailed
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING && !*alive {
		fmt.Fprintf(stderr, "service unhealthy (responded with %q)\n", resp.GetStatus())
		return probeUnhealthy
	}
	if *verbose {
		fmt.Fprintf(stdout, "status: %v\n", resp.GetStatus())
	}
	return 0
}

// waitReady connects conn (a blocking dial) or fails when ctx ends.
func waitReady(ctx context.Context, conn *grpc.ClientConn) error {
	conn.Connect()
	for {
		s := conn.GetState()
		if s == connectivity.Ready {
			return nil
		}
		if !conn.WaitForStateChange(ctx, s) {
			return fmt.Errorf("last state %v: %w", s, ctx.Err())
		}
	}
}
