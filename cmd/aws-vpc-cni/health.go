package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
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

// waitHealthy blocks until the gRPC health service on the unix socket
// reports SERVING for service "", or ctx ends. It watches the status
// (server push, no polling); servers without Watch are asked with Check
// every retry period. Connection failures (socket not there yet) are
// retried by gRPC's own reconnect backoff.
func waitHealthy(ctx context.Context, log *slog.Logger, socket string, retry time.Duration) error {
	conn, err := grpc.NewClient("unix:"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("health client for %s: %w", socket, err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	tick := time.NewTicker(retry)
	defer tick.Stop()
	for {
		serving, err := watchUntilServing(ctx, hc)
		if serving {
			return nil
		}
		if status.Code(err) == codes.Unimplemented {
			cctx, cancel := context.WithTimeout(ctx, retry)
			resp, cerr := hc.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
			cancel()
			if cerr == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
				return nil
			}
			err = errors.Join(err, cerr)
		}
		log.Debug("ipamd not healthy yet", "socket", socket, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for ipamd health on %s: %w", socket, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

func watchUntilServing(ctx context.Context, hc healthpb.HealthClient) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// WaitForReady: the call waits for the socket to appear instead of failing.
	stream, err := hc.Watch(ctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil {
		return false, err
	}
	for {
		resp, err := stream.Recv()
		if err != nil {
			return false, err
		}
		if resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return true, nil
		}
	}
}
