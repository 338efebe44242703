package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// serveHealth runs a real gRPC server on a unix socket; withHealth=false
// leaves the health service out (Unimplemented).
func serveHealth(t *testing.T, withHealth bool) (addr string, hs *health.Server) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "h.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	if withHealth {
		hs = health.NewServer()
		healthpb.RegisterHealthServer(srv, hs)
	}
	go func() { _ = srv.Serve(l) }() // ends with Stop
	t.Cleanup(srv.Stop)
	return "unix://" + sock, hs
}

// grpc-health-probe's flags and exit codes, as the DaemonSet probes use them.
func TestProbeExitCodes(t *testing.T) {
	addr, hs := serveHealth(t, true)
	noHealth, _ := serveHealth(t, false)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus("grpc.health.v1.aws-node", healthpb.HealthCheckResponse_NOT_SERVING)
	missing := "unix://" + filepath.Join(t.TempDir(), "none.sock")

	tests := []struct {
		name    string
		args    []string
		want    int
		wantErr string
	}{
		{"serving", []string{"-addr=" + addr, "-connect-timeout=5s", "-rpc-timeout=5s", "-v"}, 0, ""},
		{"not serving", []string{"-addr=" + addr, "-service=grpc.health.v1.aws-node"}, probeUnhealthy, "NOT_SERVING"},
		{"not serving but alive", []string{"-addr=" + addr, "-service=grpc.health.v1.aws-node", "-alive"}, 0, ""},
		{"alive needs an answer", []string{"-addr=" + missing, "-connect-timeout=200ms", "-alive"}, probeConnFailed, "connection to"},
		{"unknown service", []string{"-addr=" + addr, "-service=nope"}, probeRPCFailed, "health rpc failed"},
		{"no health service", []string{"-addr=" + noHealth}, probeRPCFailed, "Unimplemented"},
		{"nothing listening", []string{"-addr=" + missing, "-connect-timeout=200ms"}, probeConnFailed, "connection to"},
		{"no addr", nil, probeBadArgs, "-addr not specified"},
		{"bad flag", []string{"-bogus"}, probeBadArgs, "bogus"},
		{"bad timeout", []string{"-addr=" + addr, "-rpc-timeout=0s"}, probeBadArgs, "must be positive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			got := runProbe(context.Background(), tt.args, &out, &errb)
			if got != tt.want {
				t.Errorf("exit %d, want %d (stderr %q)", got, tt.want, errb.String())
			}
			if tt.wantErr != "" && !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("stderr %q lacks %q", errb.String(), tt.wantErr)
			}
		})
	}
}
