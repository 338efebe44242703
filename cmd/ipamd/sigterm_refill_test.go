package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// heldAssign serves vpcsim's EC2 API; once armed, it holds the next
// AssignPrivateIpAddresses until release is closed and then passes it on
// to EC2 even if ipamd has gone meanwhile: EC2 carries out a call it
// received whether or not anyone reads the answer.
type heldAssign struct {
	sim     http.Handler
	armed   *atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (h heldAssign) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q, ok := peekQuery(w, r)
	if !ok {
		return
	}
	if q.Get("Action") == "AssignPrivateIpAddresses" && h.armed.CompareAndSwap(true, false) {
		h.entered <- struct{}{}
		<-h.release
	}
	h.sim.ServeHTTP(w, r)
}

// podsIn maps pod name → address as /v1/enis lists the pods, and returns
// every address listed under any ENI.
func podsIn(addr string) (pods map[string]string, all map[string]bool, err error) {
	resp, err := http.Get("http://" + addr + "/v1/enis")
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var cards map[int]introspect.CardENIs
	if err := json.NewDecoder(resp.Body).Decode(&cards); err != nil {
		return nil, nil, fmt.Errorf("/v1/enis: %w", err)
	}
	pods, all = map[string]string{}, map[string]bool{}
	for _, c := range cards {
		for _, e := range c.ENIs {
			for _, ci := range e.AvailableIPv4Cidrs {
				all[ci.Cidr.IP.String()] = true
				for ip, a := range ci.IPAddresses {
					if n := a.IPAMMetadata.K8SPodName; n != "" {
						if prev, dup := pods[n]; dup {
							return nil, nil, fmt.Errorf("pod %s holds %s and %s", n, prev, ip)
						}
						pods[n] = ip
					}
				}
			}
		}
	}
	return pods, all, nil
}

// TestProcessSIGTERMWhileADDWaitsForRefill: an ADD waits for an address
// while the pool's refill (AssignPrivateIpAddresses) is held in EC2, and
// ipamd gets SIGTERM; the held call then reaches EC2, before or after
// the signal. ipamd stops cleanly; the ADD either failed or got an
// address that survives the restart (checkpointed); no pod holds an
// address it was not given, and after the restart every address EC2
// put on the instance is ipamd's again (none lost to the race).
func TestProcessSIGTERMWhileADDWaitsForRefill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	for _, tc := range []struct {
		name          string
		releaseBefore bool // the held call reaches EC2 just before SIGTERM
	}{
		{"refill-lands-after-sigterm", false},
		{"refill-lands-with-sigterm", true},
	} {
		t.Run(tc.name, func(t *testing.T) { sigtermWhileRefill(t, tc.releaseBefore) })
	}
}

func sigtermWhileRefill(t *testing.T, releaseBefore bool) {
	env := simtest.Start(t, simtest.Basic())
	proxy := heldAssign{sim: env.Sim.EC2Handler(), armed: new(atomic.Bool), entered: make(chan struct{}, 1), release: make(chan struct{})}
	released := sync.OnceFunc(func() { close(proxy.release) })
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	t.Cleanup(released) // before srv.Close: a held call ends
	env.EC2URL = srv.URL
	d := simDaemon(t, env, "WARM_IP_TARGET=1", "IP_COOLDOWN_PERIOD=0",
		"VPC_CNI_METRICS_ADDR=127.0.0.1:0", "INTROSPECTION_BIND_ADDRESS=127.0.0.1:0")
	conn, err := grpc.NewClient("unix://"+filepath.Join(d.dir, "ipamd.sock"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	add, del := podCalls(rpc.NewCNIBackendClient(conn), "default")
	ctx := context.Background()

	d.start()
	intro, err := d.logAttr("serving introspection", "addr", workingWait)
	if err != nil {
		t.Fatal(err)
	}
	// The warm address in place, the next refill is held.
	if err := waitFor(workingWait, func() error {
		pods, all, err := podsIn(intro)
		if err == nil && (len(all) < 1 || len(pods) != 0) {
			err = fmt.Errorf("addresses %v, pods %v: want one warm address", all, pods)
		}
		return err
	}); err != nil {
		t.Fatalf("%v\n%s", err, tail(d.log(d.runs), 30))
	}
	proxy.armed.Store(true)
	a0, err := add(ctx, "p0")
	if err != nil {
		t.Fatalf("ADD p0 with a warm address: %v", err)
	}
	select {
	case <-proxy.entered:
	case <-time.After(workingWait):
		t.Fatalf("no refill reached EC2 after the warm address was taken\n%s", tail(d.log(d.runs), 30))
	}
	type result struct {
		addr string
		err  error
	}
	second := make(chan result, 1)
	go func() {
		actx, cancel := context.WithTimeout(ctx, workingWait)
		defer cancel()
		a, err := add(actx, "p1")
		second <- result{a, err}
	}()
	if err := waitFor(workingWait, func() error {
		var p introspect.Pool
		if _, err := getJSON(intro, "/v1/pool", &p); err != nil {
			return err
		}
		if p.WaitingADDs != 1 {
			return fmt.Errorf("%d ADDs wait", p.WaitingADDs)
		}
		return nil
	}); err != nil {
		t.Fatalf("the second ADD does not wait for the refill: %v", err)
	}

	if releaseBefore {
		released()
	}
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	released()
	r1 := <-second
	exited := make(chan error, 1)
	go func() { exited <- d.cmd.Wait() }()
	select {
	case err := <-exited:
		d.cmd = nil
		if err != nil {
			t.Fatalf("ipamd after SIGTERM: %v\n%s", err, tail(d.log(d.runs), 30))
		}
	case <-time.After(workingWait):
		t.Fatalf("ipamd still runs %s after SIGTERM", workingWait)
	}
	t.Logf("second ADD: %q, %v", r1.addr, r1.err)

	// Restart: what the pods were told must be what ipamd holds.
	d.start()
	if intro, err = d.logAttr("serving introspection", "addr", workingWait); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"p0": a0}
	if r1.err == nil {
		want["p1"] = r1.addr
	}
	if err := waitFor(workingWait, func() error {
		pods, all, err := podsIn(intro)
		if err != nil {
			return err
		}
		if fmt.Sprint(pods) != fmt.Sprint(want) {
			return fmt.Errorf("after the restart pods hold %v, want %v (what their ADDs were told)", pods, want)
		}
		inst, err := env.Sim.Instance(simtest.InstanceID)
		if err != nil {
			return err
		}
		for _, e := range inst.ENIs {
			for _, ip := range e.SecondaryIPs {
				if !all[ip.String()] {
					return fmt.Errorf("EC2 put %s on %s, but ipamd does not list it", ip, e.ID)
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, tail(d.log(d.runs), 30))
	}
	for pod := range want {
		if err := del(ctx, pod); err != nil {
			t.Errorf("DEL %s after the restart: %v", pod, err)
		}
	}
	if err := d.stop(); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
}
