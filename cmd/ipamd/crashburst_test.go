package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/introspect"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// peekQuery reads the EC2 query of r and puts its body back for vpcsim,
// which answers a malformed body itself. It answers r and returns false
// when the body cannot be read.
func peekQuery(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	q, _ := url.ParseQuery(string(body))
	return q, true
}

// slowEC2 serves vpcsim's EC2 API and counts the CreateNetworkInterface
// and AttachNetworkInterface calls not yet answered. vpcsim, like EC2,
// finishes a call it received even when the caller is gone.
type slowEC2 struct {
	sim      http.Handler
	inFlight atomic.Int64
	peak     atomic.Int64  // most ENI calls in flight at once
	started  atomic.Int64  // calls of killOn so far
	killOn   string        // the action whose killAt-th call puts a token in entered
	killAt   atomic.Int64  // 0: no token yet
	entered  chan struct{} // a token when that call starts (it is then in flight)
}

func (s *slowEC2) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q, ok := peekQuery(w, r)
	if !ok {
		return
	}
	switch action := q.Get("Action"); action {
	case "CreateNetworkInterface", "AttachNetworkInterface":
		n := s.inFlight.Add(1)
		defer s.inFlight.Add(-1)
		for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
		}
		if k := s.killAt.Load(); k > 0 && action == s.killOn && s.started.Add(1) >= k {
			select {
			case s.entered <- struct{}{}:
			default:
			}
		}
	}
	s.sim.ServeHTTP(w, r)
}

// TestKillDuringParallelENICreates: a burst of ADDs makes ipamd create
// several ENIs at once against an EC2 with realistic create/attach
// latency; SIGKILL lands while at least one create or attach is still in
// EC2's hands, and EC2 completes it. After a restart every ENI attached
// to the instance is adopted (listed in /v1/enis, delete-on-termination
// set), no ENI of ours is left available after the leaked-ENI sweep,
// every acknowledged pod keeps its address, EC2 holds no more ENIs or
// addresses than the instance allows, and new ADDs succeed.
func TestKillDuringParallelENICreates(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	// The kill lands as the burst's k-th create or attach starts: before
	// any new ENI exists, between a create and its attach, or with some
	// ENIs attached and others being created.
	for _, tc := range []struct {
		action string
		k      int64
	}{{"CreateNetworkInterface", 1}, {"AttachNetworkInterface", 1}, {"CreateNetworkInterface", 3}, {"AttachNetworkInterface", 2}} {
		t.Run(fmt.Sprintf("%s-%d", strings.TrimSuffix(tc.action, "NetworkInterface"), tc.k), func(t *testing.T) {
			killDuringENICalls(t, tc.action, tc.k)
		})
	}
}

func killDuringENICalls(t *testing.T, killOn string, killAt int64) {
	const (
		maxENIs  = 4  // c5.xlarge
		perENI   = 14 // secondary addresses per ENI (15 per ENI)
		burst    = 40 // with WARM_IP_TARGET=3 the pool needs all four ENIs
		newAfter = 8
	)
	sc := simtest.Basic()
	sc.Instances[0].Type = "c5.xlarge"
	env := simtest.Start(t, sc)
	if err := env.Sim.SetFaults(vpcsim.Faults{
		Latency: map[string]vpcsim.Duration{
			"CreateNetworkInterface": vpcsim.Duration(400 * time.Millisecond),
			"AttachNetworkInterface": vpcsim.Duration(300 * time.Millisecond),
			"*":                      vpcsim.Duration(10 * time.Millisecond),
		},
		AttachDelay: vpcsim.Duration(300 * time.Millisecond),
	}); err != nil {
		t.Fatal(err)
	}
	ec2 := &slowEC2{sim: env.Sim.EC2Handler(), killOn: killOn, entered: make(chan struct{}, 1)}
	srv := httptest.NewServer(ec2)
	t.Cleanup(srv.Close)
	env.EC2URL = srv.URL

	d := simDaemon(t, env, "WARM_IP_TARGET=3", "IP_COOLDOWN_PERIOD=0", "AWS_EC2_METADATA_DISABLED=false",
		"VPC_CNI_METRICS_ADDR=127.0.0.1:0", "INTROSPECTION_BIND_ADDRESS=127.0.0.1:0")
	sock := ""
	for _, kv := range d.env {
		if v, ok := strings.CutPrefix(kv, "VPC_CNI_IPAMD_SOCKET="); ok {
			sock = v
		}
	}
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cni := rpc.NewCNIBackendClient(conn)
	add, del := podCalls(cni, "burst")
	waitServing := func() {
		t.Helper()
		err := waitFor(30*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return del(ctx, "probe")
		})
		if err != nil {
			t.Fatalf("ipamd did not come up: %v\n%s", err, tail(d.log(d.runs), 40))
		}
	}

	d.start()
	waitServing()
	// Drain the token of any ENI call made at start, so the kill waits on
	// one made for the burst.
	if err := waitFor(workingWait, func() error {
		if n := ec2.inFlight.Load(); n != 0 {
			return fmt.Errorf("%d ENI calls in flight", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ec2.killAt.Store(killAt)

	var mu sync.Mutex
	acked := map[string]string{} // pod → address, ADD answered
	var wg sync.WaitGroup
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("burst-%02d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if addr, err := add(ctx, id); err == nil {
				mu.Lock()
				acked[id] = addr
				mu.Unlock()
			}
		}()
	}
	select {
	case <-ec2.entered:
	case <-time.After(workingWait):
		t.Fatalf("the burst started no ENI create or attach\n%s", tail(d.log(d.runs), 40))
	}
	atKill, calls := ec2.inFlight.Load(), ec2.started.Load()
	d.kill()
	wg.Wait()
	if atKill < 1 {
		t.Fatalf("%d ENI calls in flight at the kill", atKill)
	}
	// EC2 completes what it had received.
	if err := waitFor(workingWait, func() error {
		if n := ec2.inFlight.Load(); n != 0 {
			return fmt.Errorf("%d ENI calls still in flight", n)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := classify(env)
	t.Logf("killed at %s call %d (wanted %d) with %d ENI calls in flight (peak %d) and %d of %d ADDs answered; EC2 then had %d attached ENIs, %d of ours available",
		killOn, calls, killAt, atKill, ec2.peak.Load(), len(acked), burst, len(before.attached), len(before.available))
	checkLimits(t, "after the kill", before, maxENIs, perENI)

	d.start()
	waitServing()
	intro, err := d.logAttr("serving introspection", "addr", workingWait)
	if err != nil {
		t.Fatal(err)
	}
	// A runtime retries DEL for ADDs that got no answer.
	for i := range burst {
		id := fmt.Sprintf("burst-%02d", i)
		if _, ok := acked[id]; ok {
			continue
		}
		if err := del(context.Background(), id); err != nil {
			t.Fatalf("DEL of unanswered pod %s after restart: %v", id, err)
		}
	}
	holder := map[string]string{}
	for id, addr := range acked {
		if other, dup := holder[addr]; dup {
			t.Errorf("%s was given to %s and %s", addr, id, other)
		}
		holder[addr] = id
		ctx, cancel := context.WithTimeout(context.Background(), workingWait)
		got, err := add(ctx, id)
		cancel()
		if err != nil || got != addr {
			t.Errorf("pod %s had %s; re-ADD after restart gave %q (%v)", id, addr, got, err)
		}
	}

	// Every attached ENI adopted with delete-on-termination; none of ours
	// left available once the sweep ran.
	var st simENIClass
	err = waitFor(30*time.Second, func() error {
		st = classify(env)
		listed, err := introspectedENIs(intro)
		if err != nil {
			return err
		}
		var problems []string
		for _, e := range st.attached {
			if !listed[e.ID] {
				problems = append(problems, e.ID+" attached but not in /v1/enis")
			}
			if e.ID != st.primary && !e.Attachment.DeleteOnTermination {
				problems = append(problems, e.ID+" attached without delete-on-termination")
			}
		}
		for _, e := range st.available {
			problems = append(problems, e.ID+" of ours is available")
		}
		if len(problems) > 0 {
			return fmt.Errorf("%s", strings.Join(problems, "; "))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("after restart: %v\n%s", err, tail(d.log(d.runs), 40))
	}
	checkLimits(t, "after restart", st, maxENIs, perENI)

	for i := range newAfter {
		id := fmt.Sprintf("after-%02d", i)
		ctx, cancel := context.WithTimeout(context.Background(), workingWait)
		got, err := add(ctx, id)
		cancel()
		if err != nil {
			t.Fatalf("new ADD %s after restart: %v\n%s", id, err, tail(d.log(d.runs), 40))
		}
		if other, dup := holder[got]; dup {
			t.Errorf("new pod %s got %s, which %s holds", id, got, other)
		}
		holder[got] = id
	}
	checkLimits(t, "after new ADDs", classify(env), maxENIs, perENI)
	if err := d.stop(); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
}

// simENIClass sorts vpcsim's ENIs: those attached to the test instance,
// and our unattached ones.
type simENIClass struct {
	primary   string
	attached  []vpcsim.ENIView
	available []vpcsim.ENIView
}

func classify(env *simtest.Env) simENIClass {
	var c simENIClass
	for _, e := range env.Sim.NetworkInterfaces() {
		switch {
		case e.Attachment != nil && e.Attachment.InstanceID == simtest.InstanceID:
			if e.Attachment.DeviceIndex == 0 {
				c.primary = e.ID
			}
			c.attached = append(c.attached, e)
		case e.Attachment == nil && (strings.HasPrefix(e.Description, awsutils.DescriptionPrefix) ||
			e.Tags[awsutils.TagInstanceID] == simtest.InstanceID):
			c.available = append(c.available, e)
		}
	}
	return c
}

func checkLimits(t *testing.T, when string, c simENIClass, maxENIs, perENI int) {
	t.Helper()
	if len(c.attached) > maxENIs {
		t.Errorf("%s: %d ENIs attached, the instance allows %d", when, len(c.attached), maxENIs)
	}
	for _, e := range c.attached {
		if len(e.SecondaryIPs) > perENI {
			t.Errorf("%s: ENI %s holds %d secondary addresses, the instance allows %d", when, e.ID, len(e.SecondaryIPs), perENI)
		}
	}
}

// introspectedENIs is the set of ENI ids /v1/enis lists.
func introspectedENIs(addr string) (map[string]bool, error) {
	resp, err := http.Get("http://" + addr + "/v1/enis")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var cards map[int]introspect.CardENIs
	if err := json.NewDecoder(resp.Body).Decode(&cards); err != nil {
		return nil, fmt.Errorf("/v1/enis: %w", err)
	}
	out := map[string]bool{}
	for _, c := range cards {
		for id := range c.ENIs {
			out[id] = true
		}
	}
	return out, nil
}

// waitFor polls cond until it returns nil or timeout passes, and returns
// its last error.
func waitFor(timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond) // pacing between polls
	}
}
