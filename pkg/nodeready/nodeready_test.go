package nodeready

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// serveHealth runs a real gRPC server on a unix socket; withHealth=false
// leaves the health service out (Unimplemented).
func serveHealth(t *testing.T, withHealth bool) (sock string, hs *health.Server) {
	sock, hs, _ = serveWatched(t, withHealth)
	return sock, hs
}

// serveWatched is serveHealth whose channel is closed when the first
// stream (a health Watch) reaches the server.
func serveWatched(t *testing.T, withHealth bool) (sock string, hs *health.Server, watched <-chan struct{}) {
	t.Helper()
	w := make(chan struct{})
	var once sync.Once
	sock = filepath.Join(t.TempDir(), "h.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		once.Do(func() { close(w) })
		return h(srv, ss)
	}))
	if withHealth {
		hs = health.NewServer()
		healthpb.RegisterHealthServer(srv, hs)
	}
	go func() { _ = srv.Serve(l) }() // ends with Stop
	t.Cleanup(srv.Stop)
	return sock, hs, w
}

// WaitServing returns once SERVING is set, and gives up with ctx while the
// server stays NOT_SERVING or has no health service at all.
func TestWaitServing(t *testing.T) {
	sock, hs := serveHealth(t, true)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	noHealth, _ := serveHealth(t, false)

	for _, s := range []string{sock, noHealth} {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		err := WaitServing(ctx, s, 50*time.Millisecond)
		cancel()
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Fatalf("%s never SERVING: want an error naming the socket, got %v", s, err)
		}
	}

	done := make(chan error, 1)
	go func() { done <- WaitServing(context.Background(), sock, 50*time.Millisecond) }()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The conflist appears only once the server answers SERVING, complete and
// 0644, with no temporary file left.
func TestWriteWhenServing(t *testing.T) {
	sock, hs, watched := serveWatched(t, true)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	dir := t.TempDir()
	h := Handoff{Path: filepath.Join(dir, "10-aws.conflist"), Content: []byte(`{"cniVersion":"0.4.0"}`)}
	done := make(chan error, 1)
	go func() { done <- WriteWhenServing(context.Background(), sock, 20*time.Millisecond, h) }()

	// NOT_SERVING with a watcher connected: no file while the server says so.
	<-watched
	select {
	case err := <-done:
		t.Fatalf("returned while NOT_SERVING: %v", err)
	default:
	}
	if _, err := os.Stat(h.Path); !os.IsNotExist(err) {
		t.Fatalf("conflist present before SERVING (stat err %v)", err)
	}
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(h.Path)
	if err != nil || string(b) != string(h.Content) {
		t.Fatalf("conflist %q (%v), want %q", b, err, h.Content)
	}
	if st, _ := os.Stat(h.Path); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the conflist", len(entries))
	}
}

// The hand-off survives the environment round trip and is removed from it.
func TestHandoffEnv(t *testing.T) {
	h := Handoff{Path: "/host/etc/cni/net.d/10-aws.conflist", Content: []byte("{\n  \"a\": \"b=c\"\n}\n")}
	for _, kv := range h.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	got, ok, err := FromEnv()
	if err != nil || !ok || got.Path != h.Path || string(got.Content) != string(h.Content) {
		t.Fatalf("FromEnv = %+v %v %v, want %+v", got, ok, err, h)
	}
	if _, still := os.LookupEnv(EnvContent); still {
		t.Error("hand-off left in the environment")
	}
	if _, ok, err := FromEnv(); ok || err != nil {
		t.Errorf("second FromEnv: ok %v err %v, want none", ok, err)
	}
	t.Setenv(EnvPath, "/x")
	if _, _, err := FromEnv(); err == nil {
		t.Error("a path without content accepted")
	}
}

// TestWriteFileIgnoresPlantedTmpSymlink: a symlink planted where an older
// version put its temp file (<dst>.tmp) must not be followed: its target
// keeps its content and mode, and dst gets the new content.
func TestWriteFileIgnoresPlantedTmpSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "10-aws.conflist")
	if err := os.Symlink(victim, dst+".tmp"); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(dst, 0o644, func(w io.Writer) error { _, err := w.Write([]byte("new")); return err }); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "precious" {
		t.Errorf("the symlink's target was written: %q, %v", b, err)
	}
	if st, err := os.Stat(victim); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the symlink's target's mode changed: %v, %v", st.Mode(), err)
	}
	if b, err := os.ReadFile(dst); err != nil || string(b) != "new" {
		t.Errorf("dst = %q, %v; want new", b, err)
	}
	if st, err := os.Lstat(dst); err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o644 {
		t.Errorf("dst is not a regular 0644 file: %v, %v", st.Mode(), err)
	}
}
