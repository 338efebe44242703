package ipamd

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
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

// TestRestoreCorruptCheckpointRecoversFromHost: a checkpoint ipamd cannot
// read no longer stops start-up. The file is moved aside unchanged
// (ipam.json.corrupt-<time>, for an operator), and the pods' addresses
// come back from the host routes to their veths: held again, released by
// the pod's DEL (found by its veth name), or by the orphan sweep once the
// veth is gone. Routes outside the node's addresses are not taken.
func TestRestoreCorruptCheckpointRecoversFromHost(t *testing.T) {
	for _, tc := range []struct{ name, content string }{
		{"wrong version", `{"version":"vpc-cni-ipam/2","allocations":[]}`},
		{"corrupt JSON", `{"version":"vpc-cni-ipam/1","allocations":[{"ipv4":`},
		{"bad address", `{"version":"vpc-cni-ipam/1","allocations":[{"networkName":"n","containerID":"c","ifName":"eth0","ipv4":"10.0.0.999"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			links := newFakeLinks()
			h := newHarness(t, harnessOpts{noInit: true, links: links})
			ctx := context.Background()
			addrs, err := h.ec2.AssignIPv4(ctx, h.primaryENI(), 3)
			if err != nil {
				t.Fatal(err)
			}
			veth := func(i int) string { return vethname.HostVethName("eni", "default", fmt.Sprint("pod-", i), 0) }
			links.routes = []PodRoute{{Addr: addrs[0], Link: veth(0)}, {Addr: addrs[1], Link: veth(1)}, {Addr: netip.MustParseAddr("192.168.77.7"), Link: veth(2)}}
			links.setPod(0, true)
			links.setPod(1, true)
			if err := os.WriteFile(h.cfg.BackingStore, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := h.n.Init(ctx); err != nil {
				t.Fatalf("Init with a corrupt checkpoint: %v", err)
			}
			aside, _ := filepath.Glob(h.cfg.BackingStore + ".corrupt-*")
			if len(aside) != 1 {
				t.Fatalf("moved-aside files: %v, want one", aside)
			}
			if got, _ := os.ReadFile(aside[0]); string(got) != tc.content {
				t.Errorf("moved-aside file holds %q, want the original", got)
			}
			for i, want := range []bool{true, true} {
				if got := h.holds(datastore.RecoveredKey(vethname.Suffix("default", fmt.Sprint("pod-", i)))); got != want {
					t.Errorf("pod %d recovered=%v, want %v", i, got, want)
				}
			}
			if st := h.pool(0).Stats; st.Pods != 2 {
				t.Errorf("datastore holds %d pods, want the 2 routed through pod veths on node addresses", st.Pods)
			}
			h.checkConsistent() // the new checkpoint is readable and matches

			// The pod's DEL (its runtime key is unknown) finds it by name
			// but cannot tell its sandbox (TestLateDELKeepsARecoveredAddress):
			// it marks the address, released at the first sweep that finds
			// the veth gone.
			d, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "sandbox-0", IfName: "eth0",
				K8SPodNamespace: "default", K8SPodName: "pod-0"})
			if len(d.GetIpAllocationMetadata()) != 0 {
				t.Errorf("DEL of a recovered pod released %v (err %v) before its veth went", d.GetIpAllocationMetadata(), err)
			}
			// Pod 0's veth goes with its sandbox; pod 1's goes without a
			// DEL: the sweep releases pod 0's at once, pod 1's after the
			// grace period.
			links.setPod(0, false)
			links.setPod(1, false)
			sw := h.n.orphans // no loop runs in the harness: the test drives the sweep's clock
			later := time.Now().Add(time.Hour)
			if err := sw.sweep(ctx, later); err != nil {
				t.Fatal(err)
			}
			if h.holds(datastore.RecoveredKey(vethname.Suffix("default", "pod-0"))) ||
				!h.holds(datastore.RecoveredKey(vethname.Suffix("default", "pod-1"))) {
				t.Errorf("first sweep: want pod 0 (DEL seen) released and pod 1 (no DEL) held for the grace period")
			}
			if err := sw.sweep(ctx, later.Add(h.n.times.OrphanGrace)); err != nil {
				t.Fatal(err)
			}
			if st := h.pool(0).Stats; st.Pods != 0 {
				t.Errorf("after DEL and sweep: %d pods held, want 0", st.Pods)
			}
			h.checkConsistent()
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
	st := h.pool(0).Stats
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
// the primary ENI are restored to the main table, which the host turns
// into no from-pod rule at all (TestPrivilegedRestoreMainTablePodDropsOldRule).
func TestRestoreRecreatesPodRules(t *testing.T) {
	h := newHarness(t, harnessOpts{cfg: func(c *config.Config) { c.IPCooldown = 0 }})
	ctx := context.Background()
	pods := map[int]bool{}
	h.setPods(pods, 12) // m5.large: 9 on the primary ENI, 3 on the second
	want := map[netip.Addr]int{}
	keys := map[datastore.Key]bool{}
	for i := range pods {
		keys[podKey(i)] = true
	}
	for _, cs := range h.n.Snapshot().Cards {
		for _, e := range cs.ENIs {
			for _, ci := range e.CIDRs {
				for _, a := range ci.Allocations {
					if keys[a.Key] {
						want[a.Addr] = e.RouteTableID
					}
				}
			}
		}
	}
	if !slices.Contains(slices.Collect(maps.Values(want)), 254) || len(slices.Compact(slices.Sorted(maps.Values(want)))) < 2 {
		t.Fatalf("pods' tables %v: want pods on the primary ENI and on a secondary one", want)
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

// TestRestoreDropsUnknownCIDRAfterWait: a restored allocation whose
// address is on no ENI of the node is kept pending for the bounded wait
// (its CIDR may yet appear), then dropped from memory and the checkpoint.
func TestRestoreDropsUnknownCIDRAfterWait(t *testing.T) {
	times := fastTimes
	times.PendingWait = time.Second
	h := newHarness(t, harnessOpts{noInit: true, times: &times})
	file := `{"version":"vpc-cni-ipam/1","allocations":[{"networkName":"aws-cni","containerID":"gone","ifName":"eth0",` +
		`"ipv4":"10.0.250.9","allocationTimestamp":1,"metadata":{"k8sPodNamespace":"default","k8sPodName":"gone"}}]}` + "\n"
	if err := os.WriteFile(h.cfg.BackingStore, []byte(file), 0o644); err != nil {
		t.Fatal(err)
	}
	h.runDaemon()
	waitFor(t, 20*time.Second, "ipamd ready", h.n.Ready)
	if st := h.pool(0).Stats; st.Pending != 1 {
		t.Fatalf("right after start: %d pending, want the unknown-CIDR allocation kept", st.Pending)
	}
	// The counter moves once DropPending has returned, that is once the
	// checkpoint write holding the drop is durable; Pending alone turns 0
	// while that write may still be in flight (group commit).
	dropped := h.n.metrics.RestoreDropped.WithLabelValues("unknown_cidr")
	waitFor(t, 20*time.Second, "the pending allocation dropped", func() bool {
		return h.pool(0).Stats.Pending == 0 && counterValue(t, dropped) >= 1
	})
	f, err := datastore.NewFileCheckpointer(h.cfg.BackingStore).Read()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range f.Allocations {
		if a.Key.ContainerID == "gone" {
			t.Errorf("dropped allocation still in the checkpoint: %+v", a)
		}
	}
	if got := counterValue(t, dropped); got != 1 {
		t.Errorf("vpccni_checkpoint_entries_dropped_total{reason=unknown_cidr} = %v, want 1", got)
	}
}
