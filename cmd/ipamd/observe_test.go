package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// simDaemon prepares (but does not start) an ipamd process against env
// without host networking, with fast timers and extra environment.
func simDaemon(t *testing.T, env *simtest.Env, extra ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{t: t, bin: buildIpamd(t), dir: dir, env: append([]string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_EC2_ENDPOINT=" + env.EC2URL,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + env.IMDSURL(simtest.InstanceID),
		"AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret",
		"VPC_CNI_DISABLE_HOST_NETWORK=true", "VPC_CNI_TEST_FAST_INTERVALS=true",
		"VPC_CNI_IPAMD_SOCKET=" + filepath.Join(dir, "ipamd.sock"),
		"AWS_VPC_K8S_CNI_BACKING_STORE=" + filepath.Join(dir, "ipam.json"),
		"AWS_VPC_K8S_CNI_LOG_FILE=stderr", "AWS_VPC_K8S_CNI_LOGLEVEL=debug",
	}, extra...)}
	t.Cleanup(d.kill)
	return d
}

// workingWait bounds a wait for what a working daemon does (start, answer
// an ADD or DEL, settle its EC2 calls, stop on SIGTERM): a loaded CI
// machine can take well over 10 s to start it. A broken path still fails,
// only later.
const workingWait = 30 * time.Second

// logAttr waits for the first log line of the current run with message
// msg and returns its attribute attr.
func (d *daemon) logAttr(msg, attr string, timeout time.Duration) (string, error) {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		sc := bufio.NewScanner(strings.NewReader(d.log(d.runs)))
		for sc.Scan() {
			var line map[string]any
			if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == msg {
				s, _ := line[attr].(string)
				return s, nil
			}
		}
	}
	return "", errors.New("no log line " + msg + " within " + timeout.String() + ":\n" + d.log(d.runs))
}

// buildIpamctl compiles cmd/ipamctl into the test's build directory.
func buildIpamctl(t *testing.T) string {
	t.Helper()
	buildIpamd(t) // creates build.dir
	bin := filepath.Join(build.dir, "ipamctl")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if out, err := exec.Command("go", "build", "-o", bin, "../ipamctl").CombinedOutput(); err != nil {
		t.Fatalf("go build ipamctl: %v\n%s", err, out)
	}
	return bin
}

// heldAttach serves vpcsim's EC2 API and answers no AttachNetworkInterface
// until release is closed.
type heldAttach struct {
	sim     http.Handler
	release chan struct{}
}

func (h heldAttach) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if q, _ := url.ParseQuery(string(body)); q.Get("Action") == "AttachNetworkInterface" {
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
	}
	h.sim.ServeHTTP(w, r)
}

// TestProcessServesIntrospectionAndMetrics: the daemon serves /metrics and
// introspection on the configured addresses, and `ipamctl pool` shows the
// ENI attach ipamd waits on while EC2 holds it, then the ENIs EC2 has.
func TestProcessServesIntrospectionAndMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	env := simtest.Start(t, simtest.Basic())
	// EC2 holds the attach until the test has seen ipamd wait on it: a
	// fixed delay is a window a loaded machine's polls can miss.
	held := heldAttach{sim: env.Sim.EC2Handler(), release: make(chan struct{})}
	released := sync.OnceFunc(func() { close(held.release) })
	srv := httptest.NewServer(held)
	t.Cleanup(srv.Close)
	t.Cleanup(released) // runs before srv.Close: a held call ends
	env.EC2URL = srv.URL
	ctl := buildIpamctl(t)
	// m5.large: 9 addresses per ENI, so 12 warm addresses need a second ENI.
	d := simDaemon(t, env, "WARM_IP_TARGET=12", "VPC_CNI_METRICS_ADDR=127.0.0.1:0", "INTROSPECTION_BIND_ADDRESS=127.0.0.1:0")
	d.start()
	intro, err := d.logAttr("serving introspection", "addr", workingWait)
	if err != nil {
		t.Fatal(err)
	}
	metricsAt, err := d.logAttr("serving metrics", "addr", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pool := func() string {
		out, err := exec.Command(ctl, "-addr", intro, "pool").CombinedOutput()
		if err != nil {
			return "ipamctl failed: " + err.Error() + "\n" + string(out)
		}
		return string(out)
	}
	attaching := regexp.MustCompile(`(?m)^waiting on:\n(\s+.*\n)*\s+ec2\s+(CreateNetworkInterface \+ )?AttachNetworkInterface\b`)
	var out string
	for deadline := time.Now().Add(workingWait); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if out = pool(); attaching.MatchString(out) {
			break
		}
	}
	if !attaching.MatchString(out) {
		t.Fatalf("ipamctl pool never showed the ENI attach ipamd waits on; last output:\n%s", out)
	}
	t.Logf("during the attach:\n%s", out)
	released()
	eniRE := regexp.MustCompile(`\beni-[0-9a-f]+\b`)
	for deadline := time.Now().Add(workingWait); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if out = pool(); len(eniRE.FindAllString(out, -1)) == 2 && strings.Contains(out, "waiting on: nothing") {
			break
		}
	}
	inst, err := env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, e := range inst.ENIs {
		want = append(want, e.ID)
	}
	got := eniRE.FindAllString(out, -1)
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) || !strings.Contains(out, "waiting on: nothing") || !strings.Contains(out, "WARM_IP_TARGET=12") {
		t.Fatalf("ipamctl pool after the attach shows ENIs %v, EC2 has %v:\n%s", got, want, out)
	}

	resp, err := http.Get("http://" + metricsAt + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	if _, err := bufio.NewReader(resp.Body).WriteTo(&body); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`awscni_ec2api_req_count{fn="CreateNetworkInterface"} 1`, `awscni_eni_allocated 2`,
		`vpccni_pool_actions_total{action="create-eni",result="ok"} 1`, `awscni_build_info{`} {
		if !strings.Contains(body.String(), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if err := d.stop(); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, d.log(d.runs))
	}
}

// freeAddr is a loopback TCP address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // we want the port free
	return addr
}

// TestProcessDisableMetricsAndIntrospection: with DISABLE_METRICS and
// DISABLE_INTROSPECTION nothing listens on the configured addresses; a
// unix: introspection address serves on that socket, and one without a
// path refuses to start.
func TestProcessDisableMetricsAndIntrospection(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	env := simtest.Start(t, simtest.Basic())
	metricsAt, intro := freeAddr(t), freeAddr(t)
	d := simDaemon(t, env, "DISABLE_METRICS=true", "DISABLE_INTROSPECTION=true",
		"VPC_CNI_METRICS_ADDR="+metricsAt, "INTROSPECTION_BIND_ADDRESS="+intro)
	d.start()
	if _, err := d.logAttr("node initialised", "instance", workingWait); err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{metricsAt, intro} {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			t.Errorf("%s accepts connections although metrics and introspection are disabled", addr)
		}
	}
	if err := d.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}

	// A unix: address serves introspection on that socket (ipamctl reads it).
	sock := filepath.Join(t.TempDir(), "introspect.sock")
	u := simDaemon(t, env, "DISABLE_METRICS=true", "INTROSPECTION_BIND_ADDRESS=unix:"+sock)
	u.start()
	if _, err := u.logAttr("node initialised", "instance", workingWait); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(buildIpamctl(t), "-addr", "unix:"+sock, "pool").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "eni-00000000000000001") {
		t.Errorf("ipamctl -addr unix:%s pool: %v\n%s", sock, err, out)
	}
	if err := u.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}

	bad := simDaemon(t, env, "DISABLE_METRICS=true", "INTROSPECTION_BIND_ADDRESS=unix:")
	cmd := exec.Command(bad.bin)
	cmd.Env = bad.env
	out, err = cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "INTROSPECTION_BIND_ADDRESS") {
		t.Fatalf("INTROSPECTION_BIND_ADDRESS=unix: → %v\n%s", err, out)
	}
}
