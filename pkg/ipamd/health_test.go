package ipamd

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestHealthFollowsCheckpoint: while the checkpoint cannot be written
// (here a directory stands where the file must be renamed to, which
// refuses the rename even to root), every ADD fails, so health answers
// NOT_SERVING; once it can be written again health returns to SERVING by
// itself, without any pod activity, and the file matches memory.
func TestHealthFollowsCheckpoint(t *testing.T) {
	times := fastTimes
	times.CheckpointRetry = 20 * time.Millisecond
	h := newHarness(t, harnessOpts{noInit: true, times: &times})
	h.runDaemon()
	conn := dial(t, h.cfg.SocketPath)
	cni := rpc.NewCNIBackendClient(conn)
	waitHealth := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		waitFor(t, 20*time.Second, "health "+want.String(), func() bool {
			return healthStatus(t, conn, HealthService) == want && healthStatus(t, conn, "") == want
		})
	}
	waitHealth(healthpb.HealthCheckResponse_SERVING)
	ctx := context.Background()
	add := func(id string) (*rpc.AddNetworkReply, error) {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return cni.AddNetwork(actx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: id, IfName: "eth0",
			K8SPodNamespace: "default", K8SPodName: id})
	}
	if _, err := add("before"); err != nil {
		t.Fatalf("ADD with a writable checkpoint: %v", err)
	}

	path := h.cfg.BackingStore
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := add("during")
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "checkpoint") {
		t.Errorf("ADD with an unwritable checkpoint: %v, want Internal naming the checkpoint", err)
	}
	waitHealth(healthpb.HealthCheckResponse_NOT_SERVING)
	if got := counterValue(t, h.n.metrics.CheckpointOK); got != 0 {
		t.Errorf("vpccni_checkpoint_writable = %v while failing", got)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitHealth(healthpb.HealthCheckResponse_SERVING)
	if got := counterValue(t, h.n.metrics.CheckpointOK); got != 1 {
		t.Errorf("vpccni_checkpoint_writable = %v after recovery", got)
	}
	f, err := datastore.NewFileCheckpointer(path).Read()
	if err != nil {
		t.Fatalf("checkpoint after recovery: %v", err)
	}
	if len(f.Allocations) != 1 || f.Allocations[0].Key.ContainerID != "before" {
		t.Errorf("checkpoint after recovery holds %+v, want only the pod added before", f.Allocations)
	}
	if _, err := add("after"); err != nil {
		t.Errorf("ADD after recovery: %v", err)
	}
}
