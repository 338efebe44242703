// Package nodeready is the hand-off between the aws-node entrypoint and
// ipamd that marks the node network-ready: the entrypoint renders
// 10-aws.conflist, passes it to ipamd in the environment and replaces
// itself with ipamd (exec, same pid); ipamd writes the file once its gRPC
// health service answers SERVING on its socket. So the conflist still
// appears only after ipamd is ready (docs/compatibility.md, "Entrypoint and
// init container"), and no entrypoint process stays resident beside ipamd.
package nodeready

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// Environment of the hand-off. Never set by a user: the entrypoint sets
// them for ipamd only.
const (
	EnvPath    = "VPC_CNI_CONFLIST_PATH"    // where to write the conflist
	EnvContent = "VPC_CNI_CONFLIST_CONTENT" // the rendered conflist
)

// Handoff is a conflist to write once ipamd is ready.
type Handoff struct {
	Path    string
	Content []byte
}

// Env returns the environment entries that pass h to ipamd.
func (h Handoff) Env() []string {
	return []string{EnvPath + "=" + h.Path, EnvContent + "=" + string(h.Content)}
}

// FromEnv reads a hand-off from the environment and removes it, so that
// nothing ipamd starts inherits it. ok is false when there is none (ipamd
// started by something else than the entrypoint).
func FromEnv() (h Handoff, ok bool, err error) {
	path, havePath := os.LookupEnv(EnvPath)
	content, haveContent := os.LookupEnv(EnvContent)
	_ = os.Unsetenv(EnvPath)    // only fails for an invalid name
	_ = os.Unsetenv(EnvContent) // likewise
	switch {
	case !havePath && !haveContent:
		return Handoff{}, false, nil
	case path == "" || content == "":
		return Handoff{}, false, fmt.Errorf("%s and %s must both be set and non-empty", EnvPath, EnvContent)
	}
	return Handoff{Path: path, Content: []byte(content)}, true, nil
}

// WriteWhenServing waits until the health service on socket answers
// SERVING, then writes h.Path atomically (mode 0644).
func WriteWhenServing(ctx context.Context, socket string, retry time.Duration, h Handoff) error {
	if err := WaitServing(ctx, socket, retry); err != nil {
		return err
	}
	return WriteFile(h.Path, 0o644, func(w io.Writer) error { _, err := w.Write(h.Content); return err })
}

// WaitServing blocks until the gRPC health service on the unix socket
// reports SERVING for service "", or ctx ends. It watches the status
// (server push, no polling); servers without Watch are asked with Check
// every retry period. Connection failures (socket not there yet) are
// retried by gRPC's own reconnect backoff.
func WaitServing(ctx context.Context, socket string, retry time.Duration) error {
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
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for health on %s: %w", socket, errors.Join(context.Cause(ctx), err))
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

// WriteFile writes dst through a new temp file beside it + fsync + rename:
// a reader sees the old file or the complete new one (kubelet may read the
// conflist, or exec a plugin binary, at any moment). The temp file is made
// afresh (O_EXCL, random name), never opened by a fixed name: a symlink
// planted at a fixed path in the host directory would have been followed,
// truncating and overwriting its target as root. Its name ends in .tmp so
// the runtime never loads it as a config.
func WriteFile(dst string, mode os.FileMode, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp) // best effort; the error that matters is err
		}
	}()
	if err := write(f); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	// CreateTemp makes the file 0600; set the mode asked for.
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	// Make the rename durable too.
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = d.Sync() // best effort: the file itself is complete
		d.Close()
	}
	return nil
}
