package ipamd

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// fullNode is an m5.large limited to one ENI (MAX_ENI=1: 9 secondary
// addresses) with the pool manager running, every address taken by a pod.
// logs (nil: discarded) receives ipamd's JSON log.
func fullNode(t *testing.T, cooldown time.Duration, logs *syncBuffer) *harness {
	t.Helper()
	o := harnessOpts{cfg: func(c *config.Config) { c.MaxENI, c.IPCooldown = 1, cooldown }}
	if logs != nil {
		o.log = slog.New(slog.NewJSONHandler(logs, nil))
	}
	h := newHarness(t, o)
	h.settle()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.n.pool.Run(ctx, time.Hour, 0, h.n.PoolCycle) }()
	t.Cleanup(func() { cancel(); <-done })
	for i := range 9 {
		if _, err := h.srv.AddNetwork(ctx, addReq(fmt.Sprint("full-", i))); err != nil {
			t.Fatalf("pod %d of 9: %v", i, err)
		}
	}
	return h
}

// oneTooMany runs an ADD on h's full node and returns its error, failing
// t unless the ADD was refused (ResourceExhausted) within a second.
func oneTooMany(ctx context.Context, t *testing.T, h *harness) error {
	t.Helper()
	start := time.Now()
	_, err := h.srv.AddNetwork(ctx, addReq("one-too-many"))
	took := time.Since(start)
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("ADD on a full node = %v, want ResourceExhausted", err)
	}
	if took > time.Second {
		t.Errorf("ADD failed after %s, want within 1 s: %v", took.Round(time.Millisecond), err)
	}
	return err
}

func addReq(id string) *rpc.AddNetworkRequest {
	return &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: id, IfName: "eth0", K8SPodNamespace: "default", K8SPodName: id}
}

// TestFullNodeFailsFast: an ADD on a node at its hard limit with nothing
// cooling fails within a second (not after the ADD deadline), naming the
// limit: instance type, ENIs × addresses.
func TestFullNodeFailsFast(t *testing.T) {
	h := fullNode(t, 30*time.Second, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err := oneTooMany(ctx, t, h)
	for _, want := range []string{"m5.large", "1 ENIs × 9 secondary IPv4 addresses", "MAX_ENI=1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if p := h.waitingADDs(); p != 0 {
		t.Errorf("%d ADDs still counted as waiting", p)
	}
	// A cooldown that ends after the ADD's deadline serves it nothing either.
	if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "full-0", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer scancel()
	start := time.Now()
	_, err = h.srv.AddNetwork(sctx, addReq("short-deadline"))
	if status.Code(err) != codes.ResourceExhausted || time.Since(start) > time.Second {
		t.Errorf("ADD with a deadline before the cooldown ends = %v after %s, want ResourceExhausted within 1 s", err, time.Since(start))
	}
	h.checkConsistent()
}

// TestFullNodeAddWaitsForCooldown: on the same full node, an ADD whose
// deadline lies beyond the end of a cooldown waits and gets the address
// the moment it cools, never earlier; the log says what it waits for.
func TestFullNodeAddWaitsForCooldown(t *testing.T) {
	const cooldown = 1500 * time.Millisecond
	var logs syncBuffer
	h := fullNode(t, cooldown, &logs)
	ctx := context.Background()
	d, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "full-3", IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	usable, ok := h.coolingEnd()
	if !ok {
		t.Fatal("the released address is not cooling")
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, err := h.srv.AddNetwork(actx, addReq("waiter"))
	got := time.Now()
	if err != nil {
		t.Fatalf("ADD waiting for a cooldown that ends in time: %v", err)
	}
	if a, want := r.IpAllocationMetadata[0].Ipv4Addr, d.IpAllocationMetadata[0].Ipv4Addr; a != want {
		t.Errorf("got %s, want the cooled %s", a, want)
	}
	if got.Before(usable) {
		t.Errorf("address handed out %s before its cooldown ended", usable.Sub(got))
	}
	if late := got.Sub(usable); late > 500*time.Millisecond {
		t.Errorf("ADD answered %s after the cooldown ended", late)
	}
	// A long wait seen in the plugin's timing is explained in ipamd's log.
	told := logs.lines(t, "ADD waits for a cooling address")
	if len(told) != 1 {
		t.Fatalf("%d log records announce the wait for the cooldown, want 1", len(told))
	}
	if at, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(told[0]["usable_at"])); !at.Equal(usable) {
		t.Errorf("log says the address is usable at %v, want %s", told[0]["usable_at"], usable)
	}
	h.checkConsistent()
}
