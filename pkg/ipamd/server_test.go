package ipamd

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// dial connects to the unix socket the way the plugin does.
func dial(t testing.TB, path string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+path, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// runDaemon runs the IPAM's whole lifecycle (server, init, loops) until
// the test ends; it returns a cancel that stops it and waits.
func (h *harness) runDaemon() (stop func() error) {
	h.t.Helper()
	l, err := Listen(h.cfg.SocketPath)
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.n.Run(ctx, l) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() { cancel(); runErr = <-errc })
		return runErr
	}
	h.t.Cleanup(func() { _ = stop() })
	return stop
}

// waitState waits (bounded) until card 0's pool state satisfies ok, so a
// test's short-deadline ADD does not race the daemon's first pool cycle on
// a loaded machine.
func (h *harness) waitState(ok func(starved string, lastErr error) bool) {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if h.n.Ready() {
			if starved, err := h.state(0); ok(starved, err) {
				return
			}
		}
		if time.Now().After(deadline) {
			h.t.Fatal("pool state never reached the expected condition")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func healthStatus(t *testing.T, conn *grpc.ClientConn, svc string) healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	r, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
	if err != nil {
		t.Fatalf("health %q: %v", svc, err)
	}
	return r.Status
}

func TestServerSocketHealthAndBadInput(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true})
	// A stale socket file from a previous run must not stop the server.
	if err := os.WriteFile(h.cfg.SocketPath, []byte("stale"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The server runs before Init, as in production.
	l, err := Listen(h.cfg.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(h.cfg.SocketPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v, want socket 0660", fi.Mode())
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- h.srv.Serve(ctx, l, time.Second) }()
	conn := dial(t, h.cfg.SocketPath)
	cni := rpc.NewCNIBackendClient(conn)

	for _, svc := range []string{"", HealthService} {
		if s := healthStatus(t, conn, svc); s != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health %q before init: %v", svc, s)
		}
	}
	// No deadline: the server answers after Intervals.AddWait (5 s here).
	// With one, it answers a tenth of it before the deadline (at most
	// 1 s), and a loaded machine that stalls the process past that margin
	// lets the client's own deadline error win (seen in CI with 3 s). The
	// cancel only guards against a server that never answers.
	short, c2 := context.WithCancel(ctx)
	guard := time.AfterFunc(30*time.Second, c2)
	_, err = cni.AddNetwork(short, &rpc.AddNetworkRequest{ContainerId: "c1", IfName: "eth0", NetworkName: "aws-cni"})
	guard.Stop()
	c2()
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "not initialised") {
		t.Errorf("AddNetwork before init: %v, want Unavailable naming the uninitialised node", err)
	}

	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for healthStatus(t, conn, HealthService) != healthpb.HealthCheckResponse_SERVING {
		if time.Now().After(deadline) {
			t.Fatal("health never became SERVING after init")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Refusals (missing fields, multi-NIC, unknown pod) are checked on the
	// wire in TestWireRepliesAsUpstreamClientExpects.
	if _, err := cni.DelNetwork(ctx, &rpc.DelNetworkRequest{}); err != nil {
		t.Errorf("DelNetwork naming nothing: %v, want a Success=false reply", err)
	}

	// A valid ADD on the empty pool: ipamd refills at once (here the pool
	// manager is not running; AddNetwork's trigger is served by a cycle).
	go h.n.pool.Run(ctx, time.Hour, 0, h.n.PoolCycle)
	actx, c3 := context.WithTimeout(ctx, 5*time.Second)
	defer c3()
	r, err := cni.AddNetwork(actx, &rpc.AddNetworkRequest{ContainerId: "c1", IfName: "eth0", NetworkName: "aws-cni",
		K8SPodName: "p", K8SPodNamespace: "default", ClientVersion: "some-other-version"})
	if err != nil {
		t.Fatalf("AddNetwork on an empty pool: %v", err)
	}
	if !r.Success || len(r.IpAllocationMetadata) != 1 || r.IpAllocationMetadata[0].RouteTableId != 254 ||
		r.IpAllocationMetadata[0].DeviceNumber != 0 || len(r.VpcV4Cidrs) != 2 {
		t.Errorf("AddNetwork reply: %v", r)
	}
	again, err := cni.AddNetwork(actx, &rpc.AddNetworkRequest{ContainerId: "c1", IfName: "eth0", NetworkName: "aws-cni"})
	if err != nil || again.IpAllocationMetadata[0].Ipv4Addr != r.IpAllocationMetadata[0].Ipv4Addr {
		t.Errorf("repeated ADD must return the same address: %v %v", again, err)
	}
	d, err := cni.DelNetwork(ctx, &rpc.DelNetworkRequest{ContainerId: "c1", IfName: "eth0", NetworkName: "aws-cni"})
	if err != nil || !d.Success || d.IpAllocationMetadata[0].Ipv4Addr != r.IpAllocationMetadata[0].Ipv4Addr {
		t.Errorf("DelNetwork: %v %v", d, err)
	}
	if _, err := cni.DelNetwork(ctx, &rpc.DelNetworkRequest{ContainerId: "c1", IfName: "eth0", NetworkName: "aws-cni"}); err == nil ||
		!strings.Contains(err.Error(), "datastore: unknown pod") {
		t.Errorf("second DelNetwork: %v", err)
	}
	np, err := rpc.NewConfigServerBackendClient(conn).GetNetworkPolicyConfigs(ctx, &emptypb.Empty{})
	if err != nil || np.InstanceId == "" || np.Region != "us-west-2" || np.NodeIpv4 == "" {
		t.Errorf("GetNetworkPolicyConfigs: %v %v", np, err)
	}
	cancel()
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
}

func TestAddNetworkExhaustedNamesCause(t *testing.T) {
	// A full node where one address cools until after shutdown: the ADD
	// waits for it (with nothing cooling it would fail at once).
	h := newHarness(t, harnessOpts{noInit: true, cfg: func(c *config.Config) { c.MaxENI = 1; c.IPCooldown = 20 * time.Second }})
	h.runDaemon()
	conn := dial(t, h.cfg.SocketPath)
	cni := rpc.NewCNIBackendClient(conn)
	ctx := context.Background()
	// m5.large, one ENI: 9 secondary addresses.
	for i := range 9 {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := cni.AddNetwork(actx, &rpc.AddNetworkRequest{ContainerId: fmt.Sprint("c", i), IfName: "eth0", NetworkName: "aws-cni"})
		cancel()
		if err != nil {
			t.Fatalf("pod %d: %v", i, err)
		}
	}
	h.waitState(func(starved string, _ error) bool { return strings.Contains(starved, "ENI limit") })
	actx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err := cni.AddNetwork(actx, &rpc.AddNetworkRequest{ContainerId: "c-extra", IfName: "eth0", NetworkName: "aws-cni"})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "ENI limit reached: 1 of 1") {
		t.Errorf("AddNetwork beyond the node's capacity: %v, want ResourceExhausted naming the ENI limit", err)
	}
	t.Logf("error: %v", err)
}

func TestAddNetworkNamesEC2Error(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true, cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	if err := h.env.Sim.SetFaults(vpcsimFaults("AssignPrivateIpAddresses", "InsufficientFreeAddressesInSubnet")); err != nil {
		t.Fatal(err)
	}
	h.runDaemon()
	cni := rpc.NewCNIBackendClient(dial(t, h.cfg.SocketPath))
	h.waitState(func(_ string, err error) bool { return err != nil })
	actx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := cni.AddNetwork(actx, &rpc.AddNetworkRequest{ContainerId: "c", IfName: "eth0", NetworkName: "aws-cni"})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "InsufficientFreeAddressesInSubnet") {
		t.Errorf("AddNetwork with a full subnet: %v, want the EC2 code named", err)
	}
	t.Logf("error: %v", err)
}

// TestConcurrentAddDelOverSocket drives thousands of AddNetwork and
// DelNetwork calls through the real unix socket from many goroutines while
// the pool grows and shrinks. No address is ever held by two live pods;
// at the end datastore, checkpoint and EC2 agree.
func TestConcurrentAddDelOverSocket(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	h := newHarness(t, harnessOpts{noInit: true, instanceType: "m5.4xlarge", cfg: func(c *config.Config) {
		c.WarmIPTarget, c.MinimumIPTarget, c.IPCooldown = 4, 0, 0
	}})
	h.runDaemon()
	conn := dial(t, h.cfg.SocketPath)
	cni := rpc.NewCNIBackendClient(conn)

	const workers, rounds, perRound = 32, 20, 3
	var mu sync.Mutex
	holder := map[string]string{} // address → container id
	var dup []string
	// Sample EC2's view while the load runs to prove the pool grew.
	var maxIPs int
	sampleDone := make(chan struct{})
	stopSampling := make(chan struct{})
	go func() {
		defer close(sampleDone)
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(20 * time.Millisecond):
				maxIPs = max(maxIPs, h.simCounts().IPs)
			}
		}
	}()
	var wg sync.WaitGroup
	var adds, dels int64
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for r := range rounds {
				var mine []struct{ id, addr string }
				for p := range perRound {
					id := fmt.Sprintf("w%d-r%d-p%d", w, r, p)
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					rep, err := cni.AddNetwork(ctx, &rpc.AddNetworkRequest{ContainerId: id, IfName: "eth0", NetworkName: "aws-cni",
						K8SPodName: id, K8SPodNamespace: "load"})
					cancel()
					if err != nil {
						errs <- fmt.Errorf("add %s: %w", id, err)
						return
					}
					addr := rep.IpAllocationMetadata[0].Ipv4Addr
					mu.Lock()
					if other, ok := holder[addr]; ok {
						dup = append(dup, fmt.Sprintf("%s held by %s and %s", addr, other, id))
					}
					holder[addr] = id
					adds++
					mu.Unlock()
					mine = append(mine, struct{ id, addr string }{id, addr})
				}
				time.Sleep(time.Duration(rng.IntN(3)) * time.Millisecond)
				for _, m := range mine {
					mu.Lock()
					delete(holder, m.addr) // before DEL: after it the address may be handed out again
					mu.Unlock()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					_, err := cni.DelNetwork(ctx, &rpc.DelNetworkRequest{ContainerId: m.id, IfName: "eth0", NetworkName: "aws-cni"})
					cancel()
					if err != nil {
						errs <- fmt.Errorf("del %s: %w", m.id, err)
						return
					}
					mu.Lock()
					dels++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(stopSampling)
	<-sampleDone
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(dup) > 0 {
		t.Fatalf("%d addresses held twice, e.g. %s", len(dup), dup[0])
	}
	t.Logf("%d adds, %d dels; at most %d addresses in EC2; EC2 calls %v", adds, dels, maxIPs, h.calls())
	if maxIPs < workers {
		t.Errorf("the pool peaked at %d addresses under %d concurrent workers: it did not grow", maxIPs, workers)
	}
	// Let the pool shrink back to its targets, then check every address.
	deadline := time.Now().Add(20 * time.Second)
	for {
		h.n.changes.Lock()
		st := h.pool(0).Stats
		h.n.changes.Unlock()
		if st.AssignedIPs == 0 && st.TotalIPs <= 4+1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.n.changes.Lock()
	h.checkConsistent()
	h.n.changes.Unlock()
	if got := h.pool(0).Stats; got.AssignedIPs != 0 || got.TotalIPs > 5 {
		t.Errorf("after the load the pool should hold ~WARM_IP_TARGET free addresses: %+v (peak %d)", got, maxIPs)
	}
	if st, err := os.Stat(filepath.Join(h.dir, "ipam.json")); err != nil || st.Size() == 0 {
		t.Errorf("checkpoint: %v", err)
	}
	if n := len(h.unattachedENIs()); n != 0 {
		t.Errorf("%d unattached ENIs left in EC2", n)
	}
}

func TestAddNetworkNamesThrottling(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true})
	if err := h.env.Sim.SetFaults(vpcsimFaults("AssignPrivateIpAddresses", "RequestLimitExceeded")); err != nil {
		t.Fatal(err)
	}
	h.runDaemon()
	cni := rpc.NewCNIBackendClient(dial(t, h.cfg.SocketPath))
	h.waitState(func(_ string, err error) bool { return err != nil })
	actx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := cni.AddNetwork(actx, &rpc.AddNetworkRequest{ContainerId: "c", IfName: "eth0", NetworkName: "aws-cni"})
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "throttling") || !strings.Contains(err.Error(), "RequestLimitExceeded") {
		t.Errorf("AddNetwork while EC2 throttles: %v", err)
	}
	t.Logf("error: %v", err)
}

// TestShutdownDrainsWaitingAdds: on SIGTERM an ADD waiting for the pool
// is answered at once (Unavailable, not ResourceExhausted at its 30 s
// deadline), and Run returns.
func TestShutdownDrainsWaitingAdds(t *testing.T) {
	// A full node where one address cools until after shutdown: the ADD
	// waits for it (with nothing cooling it would fail at once).
	h := newHarness(t, harnessOpts{noInit: true, cfg: func(c *config.Config) { c.MaxENI = 1; c.IPCooldown = 20 * time.Second }})
	stop := h.runDaemon()
	cni := rpc.NewCNIBackendClient(dial(t, h.cfg.SocketPath))
	ctx := context.Background()
	for i := range 9 {
		actx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := cni.AddNetwork(actx, &rpc.AddNetworkRequest{ContainerId: fmt.Sprint("c", i), IfName: "eth0", NetworkName: "aws-cni"})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cni.DelNetwork(ctx, &rpc.DelNetworkRequest{ContainerId: "c0", IfName: "eth0", NetworkName: "aws-cni"}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := cni.AddNetwork(actx, &rpc.AddNetworkRequest{ContainerId: "waiting", IfName: "eth0", NetworkName: "aws-cni"})
		errc <- err
	}()
	waitUntil := time.After(30 * time.Second)
	for h.waitingADDs() == 0 {
		select {
		case err := <-errc:
			t.Fatalf("the ADD returned before it waited for the pool: %v", err)
		case <-waitUntil:
			t.Fatal("the ADD never waited for the pool")
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	err := <-errc
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("waiting ADD at shutdown: %v", err)
	}
}

// TestWaitReadyPrefersReadiness: a ready ipamd never answers "not
// initialised", even to a request whose context has already ended.
func TestWaitReadyPrefersReadiness(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 200 {
		if err := h.srv.waitReady(ctx); err != nil {
			t.Fatalf("attempt %d: ready ipamd with an ended context: %v", i, err)
		}
	}
}

// TestDelNetworkCheckpointWriteFails: when only the checkpoint write of a
// release fails, the release stands, so the DEL succeeds and names the
// released address; the next good write persists it.
func TestDelNetworkCheckpointWriteFails(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	ctx := context.Background()
	h.settle()
	add, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "cp", IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	// A non-empty directory in the checkpoint's place: the atomic rename fails.
	path := datastore.CheckpointPath(h.cfg.BackingStore, 0)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(path, "blocker"), 0o755); err != nil {
		t.Fatal(err)
	}
	del, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "cp", IfName: "eth0"})
	if err != nil {
		t.Fatalf("DEL with a failing checkpoint write: %v, want success (the release happened)", err)
	}
	want := add.IpAllocationMetadata[0].Ipv4Addr
	if !del.Success || len(del.IpAllocationMetadata) != 1 || del.IpAllocationMetadata[0].Ipv4Addr != want {
		t.Errorf("DEL reply %v, want success releasing %s", del, want)
	}
	if a, ok := h.lookup(0, key("aws-cni", "cp", "eth0")); ok {
		t.Errorf("the store still holds %s for the deleted pod", a.Addr)
	}
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
	if _, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "next", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	h.checkConsistent()
}
