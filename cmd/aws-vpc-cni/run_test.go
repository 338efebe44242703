package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
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
	"github.com/vpc-cni/vpc-cni/pkg/nodeready"
)

// The test binary doubles as the entrypoint and as a fake ipamd, chosen by
// the name it is run as (links in the test's directory): as aws-vpc-cni it
// is the real main; as ipamd it serves the real gRPC health service on
// VPC_CNI_IPAMD_SOCKET, NOT_SERVING until the test creates <dir>/serve, and
// writes the entrypoint's conflist as cmd/ipamd does (pkg/nodeready).
const fakeIpamdDir = "VPC_CNI_TEST_FAKE_IPAMD_DIR"

func TestMain(m *testing.M) {
	switch filepath.Base(os.Args[0]) {
	case "aws-vpc-cni":
		main()
		os.Exit(0) // main exits or execs
	case "ipamd":
		os.Exit(fakeIpamd(os.Getenv(fakeIpamdDir)))
	}
	os.Exit(m.Run())
}

func fakeIpamd(dir string) int {
	// The pid tells the test which process ipamd is.
	_ = os.WriteFile(filepath.Join(dir, "ipamd.pid"), []byte(strconv.Itoa(os.Getpid())), 0o600) // test signal
	if code := os.Getenv("VPC_CNI_TEST_FAKE_EXIT"); code != "" {
		n, _ := strconv.Atoi(code) // test-controlled
		return n
	}
	handoff, haveHandoff, err := nodeready.FromEnv()
	if err != nil || !haveHandoff {
		return 11
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM)
	sock := os.Getenv("VPC_CNI_IPAMD_SOCKET")
	l, err := net.Listen("unix", sock)
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	written := make(chan error, 1)
	go func() { written <- nodeready.WriteWhenServing(ctx, sock, 20*time.Millisecond, handoff) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-sigs:
			_ = os.WriteFile(filepath.Join(dir, "sigterm"), nil, 0o600) // test signal
			srv.Stop()
			return 0
		case err := <-written:
			if err != nil {
				return 12
			}
			written = nil
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
	for _, d := range []string{h.pluginDir, h.bin, h.conf, filepath.Join(dir, "sbin")} {
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
		fakeIpamdDir:            dir,
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"aws-vpc-cni", "ipamd"} {
		if err := os.Symlink(self, filepath.Join(dir, "sbin", name)); err != nil {
			t.Fatal(err)
		}
	}
	h.opts = options{
		ipamd: filepath.Join(dir, "sbin", "ipamd"), pluginDir: h.pluginDir, plugins: []string{"aws-cni", "egress-cni"},
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

// entrypoint is the entrypoint running as a process of its own.
type entrypoint struct {
	cmd  *exec.Cmd
	done chan int // its exit code
}

// start runs the entrypoint binary (the test binary as aws-vpc-cni) with
// the harness's environment, as the container runtime would.
func (h *harness) start() *entrypoint {
	h.t.Helper()
	cmd := exec.Command(filepath.Join(h.dir, "sbin", "aws-vpc-cni"), "-ipamd", h.opts.ipamd, "-plugin-dir", h.opts.pluginDir)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range h.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := testWriter{h.t}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	e := &entrypoint{cmd: cmd, done: make(chan int, 1)}
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		_ = cmd.Wait() // the status is in ProcessState
		e.done <- cmd.ProcessState.ExitCode()
	}()
	h.t.Cleanup(func() {
		_ = cmd.Process.Kill() // never leave it running; it may be gone already
		<-finished
	})
	return e
}

// exitCode waits for the entrypoint (as ipamd by then) to exit.
func (e *entrypoint) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case code := <-e.done:
		e.done <- code
		return code
	case <-time.After(30 * time.Second):
		t.Fatal("the entrypoint did not exit")
		return -1
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// waitFile waits for a file the entrypoint or ipamd writes: a working
// path, which a loaded CI machine can take many seconds to reach.
func (h *harness) waitFile(name string) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
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

// prepared runs the entrypoint's preparation in the test process and
// returns the conflist it hands to ipamd.
func (h *harness) prepared(imds func() (nodeIdentity, error)) ([]byte, error) {
	lookup := func(k string) (string, bool) { v, ok := h.env[k]; return v, ok }
	l, err := prepare(context.Background(), testLogger(h.t), h.opts, lookup, imds)
	return l.handoff.Content, err
}

func noIMDS() (nodeIdentity, error) { return nil, errors.New("IMDS must not be used in this test") }

// childrenOf lists the pids of pid's children (every thread's).
func childrenOf(t *testing.T, pid int) []string {
	t.Helper()
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil || len(tasks) == 0 {
		t.Fatalf("reading the children of %d: %v (%d tasks)", pid, err, len(tasks))
	}
	var kids []string
	for _, f := range tasks {
		b, _ := os.ReadFile(f) // a thread may have exited meanwhile
		kids = append(kids, strings.Fields(string(b))...)
	}
	return kids
}

// The entrypoint installs the plugins and becomes ipamd (same pid, no
// process of its own left); ipamd writes the conflist only once it answers
// SERVING; SIGTERM reaches ipamd and its exit status is the container's.
func TestEntrypointBecomesIpamd(t *testing.T) {
	h := newHarness(t)
	e := h.start()
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

	// Only ipamd remains: the container's process is ipamd itself, with no
	// child (no entrypoint waiting on it, no helper).
	pid := e.cmd.Process.Pid
	if b, _ := os.ReadFile(filepath.Join(h.dir, "ipamd.pid")); string(b) != strconv.Itoa(pid) {
		t.Errorf("ipamd runs as pid %s, want the entrypoint's %d (exec in place)", b, pid)
	}
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); !bytes.HasPrefix(cmdline, []byte(h.opts.ipamd+"\x00")) {
		t.Errorf("pid %d runs %q, want %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte(" ")), h.opts.ipamd)
	}
	if kids := childrenOf(t, pid); len(kids) != 0 {
		t.Errorf("ipamd has child processes %v, want none", kids)
	}
	select {
	case code := <-e.done:
		t.Fatalf("exited (%d) while ipamd should run", code)
	default:
	}

	// SIGTERM reaches ipamd, and ipamd's exit status is the container's.
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := e.exitCode(t); code != 0 {
		t.Errorf("exit code %d, want ipamd's 0", code)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "sigterm")); err != nil {
		t.Error("ipamd did not receive SIGTERM")
	}
}

func TestEntrypointIpamdExitsBeforeHealthy(t *testing.T) {
	h := newHarness(t)
	h.env["VPC_CNI_TEST_FAKE_EXIT"] = "3"
	if code := h.start().exitCode(t); code != 3 {
		t.Errorf("exit code %d, want ipamd's 3", code)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "ipamd.pid")); err != nil {
		t.Error("ipamd never ran")
	}
	if _, err := os.Stat(filepath.Join(h.conf, "10-aws.conflist")); !errors.Is(err, os.ErrNotExist) {
		t.Error("conflist written although ipamd never became healthy")
	}
}

func TestEntrypointRejectsBadEnvironment(t *testing.T) {
	h := newHarness(t)
	h.env["AWS_VPC_K8S_CNI_VETHPREFIX"] = "ethernet"
	if code := h.start().exitCode(t); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if b, _ := os.ReadFile(filepath.Join(h.bin, "aws-cni")); string(b) != "old aws-cni" {
		t.Errorf("plugin installed despite invalid environment: %q", b)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "ipamd.pid")); err == nil {
		t.Error("ipamd started despite invalid environment")
	}
}

// A hand-off already in the container's environment never reaches ipamd
// beside the entrypoint's own.
func TestLaunchEnvReplacesStaleHandoff(t *testing.T) {
	l := launch{handoff: nodeready.Handoff{Path: "/new", Content: []byte("{}")}}
	env := l.env([]string{"A=1", nodeready.EnvPath + "=/old", nodeready.EnvContent + "=old"})
	want := []string{"A=1", nodeready.EnvPath + "=/new", nodeready.EnvContent + "={}"}
	if strings.Join(env, "\n") != strings.Join(want, "\n") {
		t.Errorf("env %q, want %q", env, want)
	}
}

func TestInstallerWithoutEgressPlugin(t *testing.T) {
	h := newHarness(t)
	if err := os.Remove(filepath.Join(h.pluginDir, "egress-cni")); err != nil {
		t.Fatal(err)
	}
	b, err := h.prepared(noIMDS)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("egress-cni")) {
		t.Errorf("conflist references a plugin that is not installed:\n%s", b)
	}

	// Egress requested but impossible: refuse instead of breaking every pod.
	h.env["ENABLE_V6_EGRESS"] = "true"
	if _, err := h.prepared(noIMDS); err == nil || !strings.Contains(err.Error(), "no egress-cni") {
		t.Errorf("egress enabled without egress-cni: %v, want a refusal", err)
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
	b, err := h.prepared(func() (nodeIdentity, error) {
		return fakeIdentity{id: awsutils.Identity{LocalIPv4: mustAddr("10.0.0.10")}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"nodeIP": "10.0.0.10"`, `"enabled": "true"`, `"subnet": "169.254.172.0/22"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("conflist lacks %s:\n%s", want, b)
		}
	}

	// Without it the IPv6 node cannot give pods IPv4 egress: refuse before
	// ipamd starts.
	if _, err := h.prepared(func() (nodeIdentity, error) { return fakeIdentity{err: errors.New("imds down")}, nil }); err == nil ||
		!strings.Contains(err.Error(), "imds down") {
		t.Errorf("IPv6 cluster without node IPv4: %v, want the IMDS error", err)
	}

	// IPv4 cluster asking for IPv6 egress on a node without IPv6: egress is
	// disabled with a warning, the node still becomes ready.
	h = newHarness(t)
	h.env["ENABLE_V6_EGRESS"] = "true"
	b, err = h.prepared(func() (nodeIdentity, error) {
		return fakeIdentity{id: awsutils.Identity{LocalIPv4: mustAddr("10.0.0.10")}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"enabled": "false"`)) {
		t.Errorf("IPv6 egress not disabled:\n%s", b)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
