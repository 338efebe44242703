package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// The test binary doubles as a fake ipamd: with fakeIpamdDir set it serves
// the real gRPC health service on VPC_CNI_IPAMD_SOCKET, NOT_SERVING until
// the test creates <dir>/serve.
const fakeIpamdDir = "VPC_CNI_TEST_FAKE_IPAMD_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(fakeIpamdDir); dir != "" {
		os.Exit(fakeIpamd(dir))
	}
	os.Exit(m.Run())
}

func fakeIpamd(dir string) int {
	if code := os.Getenv("VPC_CNI_TEST_FAKE_EXIT"); code != "" {
		n, _ := strconv.Atoi(code) // test-controlled
		return n
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	l, err := net.Listen("unix", os.Getenv("VPC_CNI_IPAMD_SOCKET"))
	if err != nil {
		return 10
	}
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	srv := grpc.NewServer(grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		// Tell the test a health watcher is connected.
		_ = os.WriteFile(filepath.Join(dir, "watched"), nil, 0o600) // test signal
		return h(srv, ss)
	}))
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(l) }() // ends with Stop below
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-sigs:
			_ = os.WriteFile(filepath.Join(dir, "sigterm"), nil, 0o600) // test signal
			srv.Stop()
			return 0
		case <-tick.C:
			if _, err := os.Stat(filepath.Join(dir, "serve")); err == nil {
				hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
			}
		}
	}
}

type harness struct {
	t                         *testing.T
	dir, pluginDir, bin, conf string
	socket                    string
	env                       map[string]string
	opts                      options
}

func newHarness(t *testing.T) *harness {
	dir := t.TempDir()
	h := &harness{
		t: t, dir: dir,
		pluginDir: filepath.Join(dir, "app"),
		bin:       filepath.Join(dir, "host-bin"),
		conf:      filepath.Join(dir, "host-net.d"),
		// Short path: unix socket paths are limited to 108 bytes.
		socket: filepath.Join(dir, "s.sock"),
	}
	for _, d := range []string{h.pluginDir, h.bin, h.conf} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, filepath.Join(h.pluginDir, "aws-cni"), "new aws-cni", 0o755)
	mustWrite(t, filepath.Join(h.pluginDir, "egress-cni"), "new egress-cni", 0o750)
	mustWrite(t, filepath.Join(h.bin, "aws-cni"), "old aws-cni", 0o700)
	h.env = map[string]string{
		"HOST_CNI_BIN_PATH":     h.bin,
		"HOST_CNI_CONFDIR_PATH": h.conf,
		"VPC_CNI_IPAMD_SOCKET":  h.socket,
		"AWS_VPC_ENI_MTU":       "1500",
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	h.opts = options{
		ipamd: self, pluginDir: h.pluginDir, plugins: []string{"aws-cni", "egress-cni"},
		healthRetry: 20 * time.Millisecond,
		childEnv:    []string{fakeIpamdDir + "=" + dir, "VPC_CNI_IPAMD_SOCKET=" + h.socket},
	}
	return h
}

func mustWrite(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// start runs the entrypoint in the background; the returned func cancels it
// (as SIGTERM would) and returns its exit code.
func (h *harness) start(imds func() (nodeIdentity, error)) (stop func() int, done <-chan int) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan int, 1)
	finished := make(chan struct{})
	log := slog.New(slog.NewTextHandler(testWriter{h.t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	lookup := func(k string) (string, bool) { v, ok := h.env[k]; return v, ok }
	go func() {
		defer close(finished)
		ch <- runWith(ctx, log, h.opts, lookup, imds)
	}()
	h.t.Cleanup(func() {
		cancel()
		<-finished // never leave the fake ipamd running
	})
	return func() int {
		cancel()
		return <-ch
	}, ch
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func (h *harness) waitFile(name string) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(name); err == nil {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s never appeared", name)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func noIMDS() (nodeIdentity, error) { return nil, errors.New("IMDS must not be used in this test") }

func TestInstallerWritesConflistOnlyAfterHealthy(t *testing.T) {
	h := newHarness(t)
	stop, done := h.start(noIMDS)
	conflistPath := filepath.Join(h.conf, "10-aws.conflist")

	// ipamd is up and being watched, but NOT_SERVING: plugins are installed,
	// the conflist is not (the node must stay NotReady).
	h.waitFile(filepath.Join(h.dir, "watched"))
	if _, err := os.Stat(conflistPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("conflist present before ipamd is healthy (stat err %v)", err)
	}
	for name, want := range map[string]struct {
		content string
		mode    os.FileMode
	}{"aws-cni": {"new aws-cni", 0o755}, "egress-cni": {"new egress-cni", 0o750}} {
		b, err := os.ReadFile(filepath.Join(h.bin, name))
		st, serr := os.Stat(filepath.Join(h.bin, name))
		if err != nil || serr != nil || string(b) != want.content || st.Mode().Perm() != want.mode {
			t.Errorf("%s on host: %q mode %v (%v %v), want %q %v", name, b, st.Mode().Perm(), err, serr, want.content, want.mode)
		}
	}

	mustWrite(t, filepath.Join(h.dir, "serve"), "", 0o600)
	h.waitFile(conflistPath)
	b, err := os.ReadFile(conflistPath)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("conflist is not JSON: %v\n%s", err, b)
	}
	if len(got.Plugins) != 3 || got.Plugins[0]["mtu"] != "1500" || got.Plugins[1]["enabled"] != "false" {
		t.Errorf("conflist content:\n%s", b)
	}
	if st, _ := os.Stat(conflistPath); st.Mode().Perm() != 0o644 {
		t.Errorf("conflist mode %v", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(h.conf)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}

	select {
	case code := <-done:
		t.Fatalf("entrypoint exited (%d) while ipamd runs", code)
	default:
	}
	// SIGTERM reaches ipamd, and ipamd's exit status becomes ours.
	if code := stop(); code != 0 {
		t.Errorf("exit code %d, want ipamd's 0", code)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "sigterm")); err != nil {
		t.Error("ipamd did not receive SIGTERM")
	}
}

func TestInstallerIpamdExitsBeforeHealthy(t *testing.T) {
	h := newHarness(t)
	h.opts.childEnv = append(h.opts.childEnv, "VPC_CNI_TEST_FAKE_EXIT=3")
	_, done := h.start(noIMDS)
	select {
	case code := <-done:
		if code != 3 {
			t.Errorf("exit code %d, want ipamd's 3", code)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("entrypoint did not exit after ipamd did")
	}
	if _, err := os.Stat(filepath.Join(h.conf, "10-aws.conflist")); !errors.Is(err, os.ErrNotExist) {
		t.Error("conflist written although ipamd never became healthy")
	}
}

func TestInstallerRejectsBadEnvironment(t *testing.T) {
	h := newHarness(t)
	h.env["AWS_VPC_K8S_CNI_VETHPREFIX"] = "ethernet"
	_, done := h.start(noIMDS)
	if code := <-done; code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if b, _ := os.ReadFile(filepath.Join(h.bin, "aws-cni")); string(b) != "old aws-cni" {
		t.Errorf("plugin installed despite invalid environment: %q", b)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "watched")); err == nil {
		t.Error("ipamd started despite invalid environment")
	}
}

func TestInstallerWithoutEgressPlugin(t *testing.T) {
	h := newHarness(t)
	if err := os.Remove(filepath.Join(h.pluginDir, "egress-cni")); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(h.dir, "serve"), "", 0o600)
	stop, _ := h.start(noIMDS)
	conflistPath := filepath.Join(h.conf, "10-aws.conflist")
	h.waitFile(conflistPath)
	b, _ := os.ReadFile(conflistPath)
	if bytes.Contains(b, []byte("egress-cni")) {
		t.Errorf("conflist references a plugin that is not installed:\n%s", b)
	}
	stop()

	// Egress requested but impossible: refuse instead of breaking every pod.
	h = newHarness(t)
	if err := os.Remove(filepath.Join(h.pluginDir, "egress-cni")); err != nil {
		t.Fatal(err)
	}
	h.env["ENABLE_V6_EGRESS"] = "true"
	_, done := h.start(noIMDS)
	if code := <-done; code != 1 {
		t.Errorf("egress enabled without egress-cni: exit %d, want 1", code)
	}
}

type fakeIdentity struct {
	id  awsutils.Identity
	err error
}

func (f fakeIdentity) Identity(context.Context) (awsutils.Identity, error) { return f.id, f.err }

func TestInstallerEgressNodeIP(t *testing.T) {
	pd := map[string]string{"ENABLE_IPv6": "true", "ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"}

	// IPv6 cluster: IPv4 egress with the node's IPv4 address.
	h := newHarness(t)
	for k, v := range pd {
		h.env[k] = v
	}
	mustWrite(t, filepath.Join(h.dir, "serve"), "", 0o600)
	imds := func() (nodeIdentity, error) {
		return fakeIdentity{id: awsutils.Identity{LocalIPv4: mustAddr("10.0.0.10")}}, nil
	}
	stop, _ := h.start(imds)
	h.waitFile(filepath.Join(h.conf, "10-aws.conflist"))
	b, _ := os.ReadFile(filepath.Join(h.conf, "10-aws.conflist"))
	for _, want := range []string{`"nodeIP": "10.0.0.10"`, `"enabled": "true"`, `"subnet": "169.254.172.0/22"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("conflist lacks %s:\n%s", want, b)
		}
	}
	stop()

	// Without it the IPv6 node cannot give pods IPv4 egress: fail, stop ipamd.
	h = newHarness(t)
	for k, v := range pd {
		h.env[k] = v
	}
	mustWrite(t, filepath.Join(h.dir, "serve"), "", 0o600)
	_, done := h.start(func() (nodeIdentity, error) { return fakeIdentity{err: errors.New("imds down")}, nil })
	if code := <-done; code != 1 {
		t.Errorf("IPv6 cluster without node IPv4: exit %d, want 1", code)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "sigterm")); err != nil {
		t.Error("ipamd not stopped after the setup failure")
	}

	// IPv4 cluster asking for IPv6 egress on a node without IPv6: egress is
	// disabled with a warning, the node still becomes ready.
	h = newHarness(t)
	h.env["ENABLE_V6_EGRESS"] = "true"
	mustWrite(t, filepath.Join(h.dir, "serve"), "", 0o600)
	stop, _ = h.start(func() (nodeIdentity, error) {
		return fakeIdentity{id: awsutils.Identity{LocalIPv4: mustAddr("10.0.0.10")}}, nil
	})
	h.waitFile(filepath.Join(h.conf, "10-aws.conflist"))
	b, _ = os.ReadFile(filepath.Join(h.conf, "10-aws.conflist"))
	if !bytes.Contains(b, []byte(`"enabled": "false"`)) {
		t.Errorf("IPv6 egress not disabled:\n%s", b)
	}
	stop()
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
