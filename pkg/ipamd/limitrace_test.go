package ipamd

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestLimitFoundAfterMissServesFreedAddress: on a node at its hard limit
// (every address held by a pod, IP_COOLDOWN_PERIOD=0), an ADD finds no
// address; before it reads the limit, a pod is deleted and its address is
// free at once. The ADD gets that address: the limit it reads counts an
// address it has not tried. The same window opens in a burst when the
// last ENI is wired between an ADD's miss and the pool cycle that then
// finds every slot taken (TestEC2FailuresMidBurstLeakNothing/subnet_full).
func TestLimitFoundAfterMissServesFreedAddress(t *testing.T) {
	h := fullNode(t, 0, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.srv.AddNetwork(ctx, addReq("probe")); err == nil {
		t.Fatal("an ADD on the full node got an address")
	}
	var once sync.Once
	freed := make(chan *rpc.DelNetworkReply, 1)
	h.n.handout.missed = func() {
		once.Do(func() {
			r, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "full-0", IfName: "eth0"})
			if err != nil {
				t.Errorf("DEL: %v", err)
			}
			freed <- r
		})
	}
	r, err := h.srv.AddNetwork(ctx, addReq("late"))
	if err != nil {
		t.Fatalf("ADD with an address freed before it read the limit: %v", err)
	}
	d := <-freed
	if got, want := r.IpAllocationMetadata[0].Ipv4Addr, d.IpAllocationMetadata[0].Ipv4Addr; got != want {
		t.Errorf("got %s, want the freed %s", got, want)
	}
	h.checkConsistent()
}

// TestLastENIWiredAfterMissServesADD: the burst form of the same window.
// On an m5.large with MAX_ENI=2 whose primary is full, an ADD finds no
// address and waits; the pool attaches the second (last) ENI and, with
// every slot then taken, records the hard limit, all before the ADD reads
// it. The ADD gets one of the new ENI's addresses, not "node at its hard
// limit" with 9 addresses free.
func TestLastENIWiredAfterMissServesADD(t *testing.T) {
	times := fastTimes
	times.Pool = time.Hour // only demand runs the pool
	h := newHarness(t, harnessOpts{instanceType: "m5.large", times: &times,
		cfg: func(c *config.Config) { c.MaxENI, c.IPCooldown = 2, 0 }})
	h.settle()
	h.addPods("primary-", 9)
	runPoolManager(t, h)
	card, _ := h.n.cards.first()
	var once sync.Once
	h.n.handout.missed = func() {
		once.Do(func() {
			waitFor(t, 10*time.Second, "the last ENI wired and the limit recorded", func() bool {
				return h.simCounts().ENIs == 2 && card.fullText() != ""
			})
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.srv.AddNetwork(ctx, addReq("late")); err != nil {
		t.Fatalf("ADD served by the last ENI: %v", err)
	}
	awaitWired(t, h)
	h.checkConsistent()
}

// TestLimitClearedWhenENIFreed: on an m5.large with MAX_ENI=2 and
// WARM_IP_TARGET=1 whose 18 addresses all hold pods, the pool records the
// hard limit. The pods on the second ENI and one on the primary go; the
// pool frees the empty ENI (EC2 slow to detach it). An ADD then takes the
// primary's free address, and the next ADD, which misses, waits for the
// pool to grow again and gets an address: the recorded limit died with
// the freed ENI's slot.
func TestLimitClearedWhenENIFreed(t *testing.T) {
	times := fastTimes
	times.Pool = time.Hour // only demand runs the pool
	h := newHarness(t, harnessOpts{instanceType: "m5.large", times: &times,
		cfg: func(c *config.Config) { c.MaxENI, c.IPCooldown, c.WarmIPTarget, c.WarmENITarget = 2, 0, 1, 0 }})
	h.settle()
	runPoolManager(t, h)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pods := map[netip.Addr]string{}
	for i := range 18 {
		id := fmt.Sprint("full-", i)
		r, err := h.srv.AddNetwork(ctx, addReq(id))
		if err != nil {
			t.Fatalf("pod %d of 18: %v", i, err)
		}
		pods[netip.MustParseAddr(r.IpAllocationMetadata[0].Ipv4Addr)] = id
	}
	card, _ := h.n.cards.first()
	waitFor(t, 5*time.Second, "the hard limit recorded", func() bool { return card.fullText() != "" })
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	var gone []string
	for _, e := range inst.ENIs {
		if e.Attachment == nil {
			continue
		}
		for i, a := range e.SecondaryIPs {
			if e.Attachment.DeviceIndex != 0 || i == 0 {
				gone = append(gone, pods[a])
			}
		}
	}
	if len(gone) != 10 {
		t.Fatalf("want 9 pods on the second ENI and one on the primary, got %d: %+v", len(gone), inst.ENIs)
	}
	if err := h.env.Sim.SetFaults(vpcsim.Faults{Latency: map[string]vpcsim.Duration{
		"DetachNetworkInterface": vpcsim.Duration(time.Second)}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range gone {
		if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: id, IfName: "eth0"}); err != nil {
			t.Fatal(err)
		}
	}
	h.n.pool.Fire()
	waitFor(t, 5*time.Second, "the empty ENI out of the store, EC2 still detaching it", func() bool {
		return len(card.store.ENIs()) == 1 && h.simCounts().ENIs == 2
	})
	for _, id := range []string{"after-0", "after-1"} {
		if _, err := h.srv.AddNetwork(ctx, addReq(id)); err != nil {
			t.Fatalf("ADD %s after the ENI was freed: %v", id, err)
		}
	}
	h.checkConsistent()
}

// TestWokenADDsKeepNewENIs: 10 ADDs wait on an m5.large whose primary is
// full; the pool attaches both missing ENIs for them and wakes them. Held
// between their wake-up and their try for an address, they count neither
// as waiting nor in the datastore, and the pool plans again meanwhile: it
// keeps both new ENIs (no detach, no second create) and all 10 ADDs get
// an address.
func TestWokenADDsKeepNewENIs(t *testing.T) {
	times := fastTimes
	times.Pool = time.Hour // the test runs the pool
	h := newHarness(t, harnessOpts{instanceType: "m5.large", times: &times, cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	h.settle()
	h.addPods("primary-", 9)
	var armed atomic.Bool
	cycled := make(chan struct{})
	h.n.handout.taking = func() {
		if armed.Load() {
			<-cycled // the cycle that attaches the ENIs, and plans once more after
		}
	}
	before := h.calls()
	errs := make(chan []error, 1)
	go func() { errs <- burst(h, "b-", 10, 5*time.Second) }()
	waitFor(t, 10*time.Second, "10 waiting ADDs", func() bool { return h.waitingADDs() >= 10 })
	armed.Store(true)
	go func() { defer close(cycled); h.n.PoolCycle(context.Background()) }()
	for i, err := range <-errs {
		if err != nil {
			t.Errorf("ADD %d: %v", i, err)
		}
	}
	if got := h.simCounts(); got != (simCounts{3, 27, 0}) {
		t.Errorf("EC2 holds %+v, want the 3 ENIs full", got)
	}
	if d := callDelta(before, h.calls()); d["CreateNetworkInterface"] != 2 || d["DetachNetworkInterface"] != 0 {
		t.Errorf("EC2 calls for the burst: %v, want 2 creates and no detach", d)
	}
	awaitWired(t, h)
	h.checkConsistent()
}
