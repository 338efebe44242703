package ipamd

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
	"github.com/vpc-cni/vpc-cni/rpc"
)

func (h *harness) primaryENI() string {
	h.t.Helper()
	inst, err := h.env.Sim.Instance(simtest.InstanceID)
	if err != nil {
		h.t.Fatal(err)
	}
	return inst.PrimaryENI
}

// TestRestoreUpstreamCheckpoint: a node upgraded in place from upstream
// keeps every pod's address. The checkpoint is written byte for byte in
// upstream's format (no "unassigned" extension).
func TestRestoreUpstreamCheckpoint(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true})
	ctx := context.Background()
	addrs, err := h.ec2.AssignIPv4(ctx, h.primaryENI(), 4)
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 8, 20, 0, 0, 0, 0, time.UTC).UnixNano()
	file := fmt.Sprintf(`{"version":"vpc-cni-ipam/1","allocations":[`+
		`{"networkName":"aws-cni","containerID":"sandbox-a","ifName":"eth0","ipv4":"%s","allocationTimestamp":%d,"metadata":{"k8sPodNamespace":"default","k8sPodName":"web-1","interfacesCount":1}},`+
		`{"networkName":"_migrated-from-cri","containerID":"sandbox-b","ifName":"unknown","ipv4":"%s","allocationTimestamp":%d}]}`+"\n",
		addrs[0], ts, addrs[1], ts)
	if err := os.WriteFile(h.cfg.BackingStore, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.n.Init(ctx); err != nil {
		t.Fatalf("Init with an upstream checkpoint: %v", err)
	}
	h.checkConsistent()

	// Re-ADD of a restored pod returns its address.
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "sandbox-a", IfName: "eth0"})
	if err != nil || r.IpAllocationMetadata[0].Ipv4Addr != addrs[0].String() {
		t.Errorf("re-ADD of restored pod: %v %v, want %s", r, err, addrs[0])
	}
	// A migrated entry is found by container id with the real names.
	d, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "sandbox-b", IfName: "eth0"})
	if err != nil || d.IpAllocationMetadata[0].Ipv4Addr != addrs[1].String() {
		t.Errorf("DEL of a migrated entry: %v %v, want %s", d, err, addrs[1])
	}
	// New pods never get a restored address.
	h.n.PoolCycle(ctx)
	for i := range 5 {
		r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: fmt.Sprint("new-", i), IfName: "eth0"})
		if err != nil {
			t.Fatal(err)
		}
		if got := r.IpAllocationMetadata[0].Ipv4Addr; got == addrs[0].String() || got == addrs[1].String() {
			t.Errorf("new pod %d got %s, held or cooling from the checkpoint", i, got)
		}
	}
	h.checkConsistent()
}

// TestRestoreRejectsBadCheckpoint: a checkpoint ipamd cannot read stops
// start-up with an error naming the problem, and the file is left as it
// was (nothing lost: an operator or an older version can still read it).
func TestRestoreRejectsBadCheckpoint(t *testing.T) {
	for _, tc := range []struct{ name, content, want string }{
		{"wrong version", `{"version":"vpc-cni-ipam/2","allocations":[]}`, "unsupported version"},
		{"corrupt JSON", `{"version":"vpc-cni-ipam/1","allocations":[{"ipv4":`, "checkpoint"},
		{"bad address", `{"version":"vpc-cni-ipam/1","allocations":[{"networkName":"n","containerID":"c","ifName":"eth0","ipv4":"10.0.0.999"}]}`, "10.0.0.999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOpts{noInit: true})
			if err := os.WriteFile(h.cfg.BackingStore, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			err := h.n.Init(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "checkpoint") {
				t.Fatalf("Init: %v, want an error about the checkpoint containing %q", err, tc.want)
			}
			t.Logf("error: %v", err)
			got, _ := os.ReadFile(h.cfg.BackingStore)
			if string(got) != tc.content {
				t.Errorf("checkpoint rewritten to %q", got)
			}
			if h.n.Ready() {
				t.Error("node reports ready after a failed restore")
			}
		})
	}
}

// TestRestoreKeepsCooldown: an address released just before a restart is
// not handed to a new pod after it.
func TestRestoreKeepsCooldown(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.WarmIPTarget = 1; c.IPCooldown = time.Hour }})
	ctx := context.Background()
	h.n.PoolCycle(ctx)
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "a", IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	old := r.IpAllocationMetadata[0].Ipv4Addr
	if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "a", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	h.connect(fastTimes) // restart
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	st := h.n.cards[0].store.Stats()
	if st.CoolingIPs != 1 {
		t.Errorf("after restart: %+v, want the released address still cooling", st)
	}
	h.n.PoolCycle(ctx)
	r, err = h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "b", IfName: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	if r.IpAllocationMetadata[0].Ipv4Addr == old {
		t.Errorf("new pod got %s, released %s ago with a 1 h cooldown", old, "moments")
	}
}

// TestRestoreRecreatesPodRules: after a restart every restored pod on a
// secondary ENI gets its from-pod rule to that ENI's table again; pods on
// the primary ENI (main table) get none.
func TestRestoreRecreatesPodRules(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	ctx := context.Background()
	pods := map[int]bool{}
	h.setPods(pods, 12) // m5.large: 9 on the primary ENI, 3 on the second
	want := map[netip.Addr]int{}
	for _, c := range h.n.cards {
		for i := range pods {
			if a, ok := c.store.Lookup(podKey(i)); ok && a.RouteTableID != 254 {
				want[a.Addr] = a.RouteTableID
			}
		}
	}
	if len(want) == 0 {
		t.Fatal("no pod on a secondary ENI")
	}
	h.connect(fastTimes)
	if err := h.n.Init(ctx); err != nil {
		t.Fatal(err)
	}
	h.host.mu.Lock()
	got := maps.Clone(h.host.restored)
	h.host.mu.Unlock()
	if !maps.Equal(got, want) {
		t.Errorf("restored pod rules %v, want %v", got, want)
	}
}
