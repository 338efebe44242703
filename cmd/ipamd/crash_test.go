package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

var build struct {
	sync.Once
	dir, bin string
	err      error
}

// buildIpamd compiles this command once per test binary.
func buildIpamd(t *testing.T) string {
	t.Helper()
	build.Do(func() {
		if build.dir, build.err = os.MkdirTemp("", "ipamd-test-bin"); build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "ipamd")
		out, err := exec.Command("go", "build", "-o", build.bin, ".").CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		_ = os.RemoveAll(build.dir) // best effort: a temp dir
	}
	os.Exit(code)
}

// TestBadConfigRefusesToStart: the process exits 1 and its log names every
// bad variable and value, the refused ones and those upstream's fallback
// replaces (logged as warnings).
func TestBadConfigRefusesToStart(t *testing.T) {
	bin := buildIpamd(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "AWS_VPC_K8S_CNI_LOG_FILE=stderr",
		"WARM_IP_TARGET=five", "ENABLE_IPv4=true", "ENABLE_IPv6=true", "NETWORK_POLICY_ENFORCING_MODE=lax"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	for _, want := range []string{`WARM_IP_TARGET=\"five\": not an integer; using 0`, "ENABLE_IPv4=true and ENABLE_IPv6=true", `NETWORK_POLICY_ENFORCING_MODE=\"lax\"`, "refusing to start"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %s:\n%s", want, out)
		}
	}
}

type daemon struct {
	t    *testing.T
	bin  string
	env  []string
	dir  string
	cmd  *exec.Cmd
	runs int
}

func (d *daemon) start() {
	d.t.Helper()
	d.runs++
	cmd := exec.Command(d.bin)
	cmd.Env = d.env
	logf, err := os.OpenFile(filepath.Join(d.dir, fmt.Sprintf("ipamd-%d.log", d.runs)), os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	_ = logf.Close() // the child has its own descriptor
	d.cmd = cmd
}

// kill SIGKILLs the process (by its pid) and reaps it.
func (d *daemon) kill() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGKILL) // it may have exited already
	_ = d.cmd.Wait()
	d.cmd = nil
}

// stop sends SIGTERM and waits for a clean exit.
func (d *daemon) stop() error {
	if d.cmd == nil {
		return nil
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		d.cmd = nil
		return err
	case <-time.After(workingWait):
		d.kill()
		return errors.New(fmt.Sprintf("ipamd did not stop within %s of SIGTERM", workingWait))
	}
}

func (d *daemon) log(run int) string {
	b, _ := os.ReadFile(filepath.Join(d.dir, fmt.Sprintf("ipamd-%d.log", run)))
	return string(b)
}

type pod struct{ id, addr string }

// TestCrashRecovery runs ipamd as a process against vpcsim on loopback,
// SIGKILLs it at random points while pods come and go (the pool growing
// and shrinking, ENIs attached and freed), restarts it, and checks that
// no address is ever handed to two live pods, that every live pod keeps
// its address across restarts (checkpoint), and that in the end EC2 holds
// no leaked ENI or address: with every pod gone the pool returns to its
// warm target and no unattached ENI remains.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	dir := t.TempDir()
	bin := buildIpamd(t)
	sc := simtest.Basic()
	sc.Instances[0].Type = "c5.xlarge" // 4 ENIs × 14 addresses: the load attaches and frees ENIs
	env := simtest.Start(t, sc)
	// Some latency so kills land between the steps of an ENI's life cycle.
	if err := env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{"*": vpcsim.Duration(15 * time.Millisecond)}}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "run", "ipamd.sock")
	store := filepath.Join(dir, "run", "ipam.json")
	d := &daemon{t: t, bin: bin, dir: dir, env: []string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_EC2_ENDPOINT=" + env.EC2URL,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + env.IMDSURL(simtest.InstanceID),
		"AWS_ACCESS_KEY_ID=AKIDTEST", "AWS_SECRET_ACCESS_KEY=secret",
		"AWS_EC2_METADATA_DISABLED=false",
		"VPC_CNI_DISABLE_HOST_NETWORK=true", "VPC_CNI_TEST_FAST_INTERVALS=true",
		"VPC_CNI_IPAMD_SOCKET=" + sock, "AWS_VPC_K8S_CNI_BACKING_STORE=" + store,
		"AWS_VPC_K8S_CNI_LOG_FILE=stderr", "AWS_VPC_K8S_CNI_LOGLEVEL=debug",
		"WARM_IP_TARGET=3", "IP_COOLDOWN_PERIOD=0",
		"VPC_CNI_METRICS_ADDR=127.0.0.1:0", "INTROSPECTION_BIND_ADDRESS=127.0.0.1:0",
	}}
	t.Cleanup(d.kill)

	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cni := rpc.NewCNIBackendClient(conn)

	var mu sync.Mutex
	live := map[string]string{}   // pod → address: ADD answered, no DEL answered
	holder := map[string]string{} // address → pod
	unsure := map[string]bool{}   // ADD or DEL in flight when ipamd died
	var violations []string
	next := 0
	rng := rand.New(rand.NewPCG(42, 1))

	add, del := podCalls(cni, "crash")

	// waitServing retries ADD of a known pod until the daemon answers.
	waitServing := func() {
		deadline := time.Now().Add(30 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := del(ctx, "probe")
			cancel()
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("ipamd did not come up: %v\n%s", err, d.log(d.runs))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	const rounds = 8
	for round := range rounds {
		d.start()
		waitServing()
		// A runtime retries what was in flight: DEL for failed ADDs and DELs.
		mu.Lock()
		for id := range unsure {
			ctx, cancel := context.WithTimeout(context.Background(), workingWait)
			err := del(ctx, id)
			cancel()
			if err != nil {
				t.Fatalf("round %d: DEL of in-flight pod %s after restart: %v", round, id, err)
			}
			delete(unsure, id)
		}
		// Every live pod keeps its address across the crash.
		for id, addr := range live {
			ctx, cancel := context.WithTimeout(context.Background(), workingWait)
			got, err := add(ctx, id)
			cancel()
			if err != nil || got != addr {
				violations = append(violations, fmt.Sprintf("round %d: pod %s had %s, re-ADD after restart gave %q (%v)", round, id, addr, got, err))
			}
		}
		mu.Unlock()

		// Load until a random kill (drawn before the workers share rng
		// under mu).
		killAfter := time.Duration(300+rng.IntN(1200)) * time.Millisecond
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					mu.Lock()
					grow := len(live) < 45 && (len(live) < 10 || rng.IntN(2) == 0)
					var id string
					if grow {
						id = fmt.Sprintf("p%05d-w%d", next, w)
						next++
					} else {
						for k := range live {
							id = k
							break
						}
						delete(holder, live[id]) // before DEL: the address may be reused after it
						delete(live, id)
					}
					unsure[id] = true
					mu.Unlock()
					cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
					var addr string
					var err error
					if grow {
						addr, err = add(cctx, id)
					} else {
						err = del(cctx, id)
					}
					ccancel()
					if err != nil {
						return // ipamd died (or is dying): the call stays unsure
					}
					mu.Lock()
					delete(unsure, id)
					if grow {
						if other, dup := holder[addr]; dup {
							violations = append(violations, fmt.Sprintf("%s given to %s while %s holds it", addr, id, other))
						}
						holder[addr] = id
						live[id] = addr
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(killAfter) // a random point mid-churn is the point: the kill must land anywhere
		d.kill()
		cancel()
		wg.Wait()
		mu.Lock()
		t.Logf("round %d: killed with %d live pods, %d calls in flight; EC2 %+v", round, len(live), len(unsure), simENIs(env))
		mu.Unlock()
	}

	// Final run: delete everything, then the pool must return to its target.
	d.start()
	waitServing()
	mu.Lock()
	for id := range unsure {
		if err := del(context.Background(), id); err != nil {
			t.Errorf("final DEL %s: %v", id, err)
		}
	}
	for id, addr := range live {
		got, err := add(context.Background(), id)
		if err != nil || got != addr {
			violations = append(violations, fmt.Sprintf("final: pod %s had %s, re-ADD gave %q (%v)", id, addr, got, err))
		}
		if err := del(context.Background(), id); err != nil {
			t.Errorf("final DEL %s: %v", id, err)
		}
	}
	mu.Unlock()
	for _, v := range violations {
		t.Error(v)
	}

	deadline := time.Now().Add(30 * time.Second)
	var got simState
	for {
		got = simENIs(env)
		if got.attached == 1 && got.ips <= 3 && got.unattached == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond) // pacing between polls of EC2's state
	}
	if err := d.stop(); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
	st := env.Sim.Stats()
	t.Logf("EC2 over the test: %d ENIs created, %d deleted, %d assign and %d unassign calls",
		st.Calls["CreateNetworkInterface"], st.Calls["DeleteNetworkInterface"], st.Calls["AssignPrivateIpAddresses"], st.Calls["UnassignPrivateIpAddresses"])
	if got.attached != 1 || got.ips > 3 || got.unattached != 0 {
		t.Errorf("after every pod left, EC2 holds %+v; want 1 ENI, at most WARM_IP_TARGET=3 addresses, no unattached ENI\n%s",
			got, tail(d.log(d.runs), 40))
	}
	f, err := datastore.NewFileCheckpointer(store).Read()
	if err != nil {
		t.Fatalf("checkpoint after shutdown: %v", err)
	}
	if len(f.Allocations) != 0 {
		t.Errorf("checkpoint still lists %d allocations after every pod left", len(f.Allocations))
	}
}

type simState struct{ attached, unattached, ips int }

func simENIs(env *simtest.Env) simState {
	var s simState
	for _, e := range env.Sim.NetworkInterfaces() {
		if e.Attachment == nil {
			s.unattached++
			continue
		}
		if e.Attachment.InstanceID == simtest.InstanceID {
			s.attached++
			s.ips += len(e.SecondaryIPs)
		}
	}
	return s
}

func tail(s string, n int) string {
	lines := bytes.Split([]byte(s), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// podCalls returns ADD and DEL of pods in namespace ns as the plugin makes
// them; a DEL of a pod ipamd does not know succeeds, as every plugin treats it.
func podCalls(cni rpc.CNIBackendClient, ns string) (add func(context.Context, string) (string, error), del func(context.Context, string) error) {
	add = func(ctx context.Context, id string) (string, error) {
		r, err := cni.AddNetwork(ctx, &rpc.AddNetworkRequest{ContainerId: id, IfName: "eth0", NetworkName: "aws-cni",
			K8SPodName: id, K8SPodNamespace: ns})
		if err != nil {
			return "", err
		}
		return r.IpAllocationMetadata[0].Ipv4Addr, nil
	}
	del = func(ctx context.Context, id string) error {
		_, err := cni.DelNetwork(ctx, &rpc.DelNetworkRequest{ContainerId: id, IfName: "eth0", NetworkName: "aws-cni"})
		if err != nil && strings.Contains(err.Error(), datastore.ErrUnknownPod.Error()) {
			return nil
		}
		return err
	}
	return add, del
}
