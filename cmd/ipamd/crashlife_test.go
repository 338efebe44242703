package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// heldCall serves vpcsim's EC2 API but never passes the first call of
// action on: it puts the ENI id in entered and holds the call until its
// caller goes. That call never reaches EC2; later ones do.
type heldCall struct {
	sim     http.Handler
	action  string
	entered chan string
	held    *atomic.Bool
}

func (h heldCall) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q, ok := peekQuery(w, r)
	if !ok {
		return
	}
	if q.Get("Action") == h.action && h.held.CompareAndSwap(false, true) {
		h.entered <- q.Get("NetworkInterfaceId")
		<-r.Context().Done()
		return
	}
	h.sim.ServeHTTP(w, r)
}

// TestKillBetweenENICalls: ipamd is SIGKILLed between two EC2 calls of an
// ENI's life, the second never reaching EC2: after the create, before the
// attach; after the attach, before delete-on-termination is set; after
// the detach of a surplus ENI (EC2 still detaching it, or done), before
// the delete. After a restart EC2 holds no ENI of ours unattached (none
// leaked), every attached ENI is listed in /v1/enis with
// delete-on-termination set, an ENI freed before the kill is gone and
// not adopted, and 20 new ADDs get addresses of ENIs attached to the
// instance.
func TestKillBetweenENICalls(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the daemon")
	}
	for _, tc := range []struct {
		name   string
		held   string // the call that never reaches EC2
		detach time.Duration
	}{
		{"create-then-attach", "AttachNetworkInterface", 0},
		{"attach-then-delete-on-termination", "ModifyNetworkInterfaceAttribute", 0},
		{"detaching-then-delete", "DeleteNetworkInterface", 3 * time.Second},
		{"detached-then-delete", "DeleteNetworkInterface", 0},
	} {
		t.Run(tc.name, func(t *testing.T) { killBetweenENICalls(t, tc.held, tc.detach) })
	}
}

func killBetweenENICalls(t *testing.T, held string, detach time.Duration) {
	sc := simtest.Basic()
	sc.Instances[0].Type = "c5.xlarge" // 4 ENIs × 14 secondary addresses
	env := simtest.Start(t, sc)
	if err := env.Sim.SetFaults(vpcsim.Faults{
		Latency:     map[string]vpcsim.Duration{"*": vpcsim.Duration(5 * time.Millisecond)},
		AttachDelay: vpcsim.Duration(100 * time.Millisecond),
		DetachDelay: vpcsim.Duration(detach),
	}); err != nil {
		t.Fatal(err)
	}
	proxy := heldCall{sim: env.Sim.EC2Handler(), action: held, entered: make(chan string, 1), held: new(atomic.Bool)}
	srv := httptest.NewServer(proxy)
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
	add, del := podCalls(rpc.NewCNIBackendClient(conn), "life")
	waitServing := func() {
		t.Helper()
		if err := waitFor(workingWait, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return del(ctx, "probe")
		}); err != nil {
			t.Fatalf("ipamd did not come up: %v\n%s", err, tail(d.log(d.runs), 40))
		}
	}

	d.start()
	waitServing()
	// 20 pods take the primary's 14 addresses and a second ENI; gone,
	// they leave that ENI surplus, and ipamd detaches, then deletes it.
	// The ADDs run aside: with the attach or delete-on-termination held,
	// those waiting for the second ENI get no answer before the kill.
	acked := make(chan string, 20)
	go func() {
		for i := range 20 {
			ctx, cancel := context.WithTimeout(context.Background(), workingWait)
			_, err := add(ctx, fmt.Sprintf("p-%02d", i))
			cancel()
			if err != nil {
				break
			}
			acked <- fmt.Sprintf("p-%02d", i)
		}
		close(acked)
	}()
	if held == "DeleteNetworkInterface" {
		var ids []string
		for id := range acked {
			ids = append(ids, id)
		}
		if len(ids) != 20 {
			t.Fatalf("%d of 20 ADDs answered\n%s", len(ids), tail(d.log(d.runs), 40))
		}
		for _, id := range ids {
			if err := del(context.Background(), id); err != nil {
				t.Fatal(err)
			}
		}
	}
	var eni string
	select {
	case eni = <-proxy.entered:
	case <-time.After(workingWait):
		t.Fatalf("ipamd made no %s call\n%s", held, tail(d.log(d.runs), 40))
	}
	d.kill()
	for range acked {
	}
	e, ok := eniView(env, eni)
	if !ok {
		t.Fatalf("ENI %s is gone from EC2 before the restart", eni)
	}
	t.Logf("killed with %s of %s held; EC2 has it %s", held, eni, attachState(e))

	d.start()
	waitServing()
	intro, err := d.logAttr("serving introspection", "addr", workingWait)
	if err != nil {
		t.Fatal(err)
	}
	// A runtime retries DEL for the ADDs that got no answer.
	for i := range 20 {
		if err := del(context.Background(), fmt.Sprintf("p-%02d", i)); err != nil {
			t.Fatal(err)
		}
	}
	holder := map[string]string{}
	for i := range 20 {
		id := fmt.Sprintf("after-%02d", i)
		ctx, cancel := context.WithTimeout(context.Background(), workingWait)
		got, err := add(ctx, id)
		cancel()
		if err != nil {
			t.Fatalf("ADD %s after restart: %v\n%s", id, err, tail(d.log(d.runs), 40))
		}
		holder[got] = id
	}
	var st simENIClass
	err = waitFor(workingWait, func() error {
		st = classify(env)
		listed, err := introspectedENIs(intro)
		if err != nil {
			return err
		}
		var problems []string
		if _, ok := eniView(env, eni); ok && held == "DeleteNetworkInterface" {
			problems = append(problems, eni+" (freed before the kill) still exists")
		}
		if listed[eni] && held == "DeleteNetworkInterface" {
			problems = append(problems, eni+" (freed before the kill) is in /v1/enis")
		}
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
		t.Fatalf("after restart: %v\n%s", err, tail(d.log(d.runs), 60))
	}
	onENI := map[string]bool{}
	for _, e := range st.attached {
		onENI[e.PrimaryIP.String()] = true
		for _, a := range e.SecondaryIPs {
			onENI[a.String()] = true
		}
	}
	for addr, id := range holder {
		if !onENI[addr] {
			t.Errorf("pod %s got %s, on no ENI attached to the instance", id, addr)
		}
	}
	if err := d.stop(); err != nil {
		t.Errorf("SIGTERM: %v", err)
	}
}

// eniView returns vpcsim's view of ENI id, if it exists.
func eniView(env *simtest.Env, id string) (vpcsim.ENIView, bool) {
	for _, e := range env.Sim.NetworkInterfaces() {
		if e.ID == id {
			return e, true
		}
	}
	return vpcsim.ENIView{}, false
}

func attachState(e vpcsim.ENIView) string {
	if e.Attachment == nil {
		return "available"
	}
	return "attached (" + e.Attachment.Status + ")"
}
