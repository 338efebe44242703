package ipamd

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// evictedHarness is goneENIHarness with one more pod, "victim", given the
// warm address of the second ENI; that ENI is then detached and deleted
// behind ipamd's back and a reconcile drops it. It returns the victim's
// address. No DEL is sent for the victim: its sandbox still runs.
func evictedHarness(t *testing.T) (*harness, netip.Addr) {
	t.Helper()
	return evict(t, false)
}

// heldEvictedHarness is evictedHarness with EC2 refusing every new ENI and
// address from before the eviction on, so EC2 cannot hand the victim's
// address back and the quarantine holds for as long as the test looks.
// Without it the pool manager's next grow may get the address back at once.
func heldEvictedHarness(t *testing.T) (*harness, netip.Addr) {
	t.Helper()
	return evict(t, true)
}

func evict(t *testing.T, hold bool) (*harness, netip.Addr) {
	t.Helper()
	h, second := goneENIHarness(t, time.Second)
	ctx := context.Background()
	reply, err := h.srv.AddNetwork(ctx, addReq("victim"))
	if err != nil {
		t.Fatal(err)
	}
	victim := netip.MustParseAddr(reply.IpAllocationMetadata[0].Ipv4Addr)
	if owner := simAddrs(h)[victim]; owner != second {
		t.Fatalf("victim got %s on %q, want an address of the second ENI %s", victim, owner, second)
	}
	enis, _, err := h.ec2.DescribeENIs(ctx, []string{second})
	if err != nil || len(enis) != 1 || enis[0].Attachment == nil {
		t.Fatalf("describing %s: %v %+v", second, err, enis)
	}
	if hold {
		holdAddresses(t, h)
	}
	if err := h.ec2.FreeENI(ctx, second, enis[0].Attachment.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a reconcile dropping the deleted ENI", func() bool {
		if err := h.n.reconciler.reconcile(ctx); err != nil {
			t.Logf("reconcile: %v", err)
		}
		for _, e := range h.pool(0).ENIs {
			if e.ID == second {
				return false
			}
		}
		return true
	})
	return h, victim
}

// TestEvictedAddressNotReissuedWhileItsPodLives: a pod's ENI is deleted
// behind ipamd's back; the reconcile drops the ENI, but the pod has had
// no DEL and still holds the address in its netns. EC2 then hands the
// address out again (to the ENI ipamd grows next). No new pod may get
// it. Before, the store forgot the evicted pod and the next ADD on the
// new ENI got its address: two pods, one IP.
func TestEvictedAddressNotReissuedWhileItsPodLives(t *testing.T) {
	h, victim := evictedHarness(t)
	noReissue(t, h, "new-", victim)
}

// noReissue sends ADDs until EC2 lists addr on an ENI of the node again,
// and one more, and fails if any of them gets addr.
func noReissue(t *testing.T, h *harness, prefix string, addr netip.Addr) {
	t.Helper()
	offered := false
	for i := 0; i < 12; i++ {
		actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		reply, err := h.srv.AddNetwork(actx, addReq(fmt.Sprint(prefix, i)))
		cancel()
		if err != nil {
			t.Fatalf("ADD %s%d: %v", prefix, i, err)
		}
		if got := netip.MustParseAddr(reply.IpAllocationMetadata[0].Ipv4Addr); got == addr {
			t.Fatalf("ADD %s%d got %s, the address of the evicted pod that had no DEL", prefix, i, got)
		}
		if offered {
			return
		}
		_, offered = simAddrs(h)[addr]
	}
	t.Fatalf("EC2 never listed %s on an ENI again: the test proves nothing", addr)
}

// holdAddresses makes EC2 refuse every new ENI and address until the
// returned func lifts it, so an address EC2 took from the node cannot come
// back while a test looks at its quarantine: the pool manager's next grow
// would otherwise get it back at once.
func holdAddresses(t *testing.T, h *harness) (lift func()) {
	t.Helper()
	deny := vpcsim.Faults{DenyActions: []string{"CreateNetworkInterface", "AssignPrivateIpAddresses"}}
	if err := h.env.Sim.SetFaults(deny); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := h.env.Sim.SetFaults(vpcsim.Faults{}); err != nil {
			t.Fatal(err)
		}
	}
}

func delReq(id string) *rpc.DelNetworkRequest {
	return &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: id, IfName: "eth0", K8SPodNamespace: "default",
		K8SPodName: id, Reason: "PodDeleted"}
}

// TestDELOfEvictedPodEndsItsQuarantine: the DEL of a pod whose ENI was
// deleted behind ipamd's back succeeds, naming the address it held; a
// repeated DEL gets upstream's unknown-pod answer (which every plugin
// takes as done). Before, the first DEL already got the unknown-pod answer.
func TestDELOfEvictedPodEndsItsQuarantine(t *testing.T) {
	h, victim := heldEvictedHarness(t)
	ctx := context.Background()
	if st := h.pool(0).Stats; st.Pending != 1 {
		t.Fatalf("after the eviction: %d pending, want the evicted pod kept", st.Pending)
	}
	reply, err := h.srv.DelNetwork(ctx, delReq("victim"))
	if err != nil || !reply.Success || len(reply.IpAllocationMetadata) != 1 || reply.IpAllocationMetadata[0].Ipv4Addr != victim.String() {
		t.Fatalf("DEL of the evicted pod: %+v %v, want %s released", reply, err, victim)
	}
	if st := h.pool(0).Stats; st.Pending != 0 {
		t.Fatalf("after the DEL: %d pending, want none", st.Pending)
	}
	if _, err := h.srv.DelNetwork(ctx, delReq("victim")); err == nil || !strings.Contains(err.Error(), datastore.ErrUnknownPod.Error()) {
		t.Fatalf("repeated DEL: %v, want the unknown-pod answer", err)
	}
}

// linkedVictim is evictedHarness's node run as a daemon with PodLinks:
// every pod's host veth exists, and "victim" holds an address of the
// second ENI (returned with that ENI).
func linkedVictim(t *testing.T) (h *harness, links *fakeLinks, stop func() error, victim netip.Addr, second string) {
	t.Helper()
	links = newFakeLinks()
	times := fastTimes
	times.OrphanSweep = time.Hour // the tests sweep themselves
	times.OrphanGrace = time.Hour
	h = newHarness(t, harnessOpts{instanceType: "m5.large", times: &times, links: links, noInit: true,
		cfg: func(c *config.Config) { c.WarmIPTarget, c.IPCooldown = 1, time.Millisecond }})
	stop = h.runDaemon()
	waitFor(t, 20*time.Second, "ipamd ready", h.n.Ready)
	ctx := context.Background()
	h.addPods("pod-", 9)
	links.mu.Lock()
	for i := range 9 {
		links.set[vethname.Suffix("default", fmt.Sprint("pod-", i))] = true
	}
	links.mu.Unlock()
	waitFor(t, 10*time.Second, "a second ENI with the warm address", func() bool {
		return h.simCounts() == simCounts{ENIs: 2, IPs: 10} && len(h.pool(0).ENIs) == 2
	})
	reply, err := h.srv.AddNetwork(ctx, addReq("victim"))
	if err != nil {
		t.Fatal(err)
	}
	victim = netip.MustParseAddr(reply.IpAllocationMetadata[0].Ipv4Addr)
	second = simAddrs(h)[victim]
	if second == "" || second == h.primaryENI() {
		t.Fatalf("victim got %s on %q, want an address of the second ENI", victim, second)
	}
	links.mu.Lock()
	links.set[vethname.Suffix("default", "victim")] = true
	links.mu.Unlock()
	return h, links, stop, victim, second
}

// deleteBehindIpamdsBack detaches and deletes ENI id as another client of
// EC2 would.
func deleteBehindIpamdsBack(t *testing.T, h *harness, id string) {
	t.Helper()
	ctx := context.Background()
	enis, _, err := h.ec2.DescribeENIs(ctx, []string{id})
	if err != nil || len(enis) != 1 || enis[0].Attachment == nil {
		t.Fatalf("describing %s: %v %+v", id, err, enis)
	}
	if err := h.ec2.FreeENI(ctx, id, enis[0].Attachment.ID); err != nil {
		t.Fatal(err)
	}
}

// TestEvictedPodQuarantineSurvivesRestart: the pod's ENI is deleted while
// ipamd is down. The restarted ipamd restores the pod pending (its address
// is on no ENI), keeps it past the pending wait since its host veth
// exists, and gives no new pod its address when EC2 hands it out again.
// Before, the pending wait's end dropped the pod and the address went to
// the next pod on the new ENI.
func TestEvictedPodQuarantineSurvivesRestart(t *testing.T) {
	h, _, stop, victim, second := linkedVictim(t)
	ctx := context.Background()
	lift := holdAddresses(t, h)
	restartWithENIGone(t, h, stop, second)
	if p := h.pool(0).Stats.Pending; p != 1 {
		t.Fatalf("after the restart: %d pending, want the evicted pod", p)
	}
	h.n.restore.dropPending(ctx) // the pending wait ends
	if p := h.pool(0).Stats.Pending; p != 1 {
		t.Fatalf("after the pending wait: %d pending, want the evicted pod kept (its veth exists)", p)
	}
	lift()
	noReissue(t, h, "new-", victim)
}

// TestEvictedPodReleasedOnceItsVethIsGone: an evicted pod whose DEL never
// reaches ipamd (its host veth is gone) is released by the orphan sweep,
// as any other pod: the quarantine ends with the pod.
func TestEvictedPodReleasedOnceItsVethIsGone(t *testing.T) {
	h, links, _, victim, second := linkedVictim(t)
	ctx := context.Background()
	holdAddresses(t, h)
	deleteBehindIpamdsBack(t, h, second)
	waitFor(t, 10*time.Second, "a reconcile evicting the victim", func() bool {
		if err := h.n.reconciler.reconcile(ctx); err != nil {
			t.Logf("reconcile: %v", err)
		}
		return h.pool(0).Stats.Pending == 1
	})
	links.mu.Lock()
	delete(links.set, vethname.Suffix("default", "victim"))
	links.mu.Unlock()
	h.host.mu.Lock()
	h.host.podRules = nil // the eviction deleted them once already
	h.host.mu.Unlock()
	t0 := time.Now()
	for _, at := range []time.Time{t0, t0.Add(2 * time.Hour)} {
		if err := h.n.orphans.sweep(ctx, at); err != nil {
			t.Fatal(err)
		}
	}
	st := h.pool(0).Stats
	if st.Pending != 0 || st.Pods != 9 {
		t.Fatalf("after the sweeps: %d pending, %d pods; want the victim released and the 9 others kept", st.Pending, st.Pods)
	}
	h.host.mu.Lock()
	defer h.host.mu.Unlock()
	if !slices.Contains(h.host.podRules, victim) {
		t.Errorf("the sweep deleted the rules of %v, want %s among them", h.host.podRules, victim)
	}
}

// TestDELOfPodWhoseENIWentWhileDownDeletesItsRules: a pod's ENI is deleted
// while ipamd is down, so nothing removed the pod's ip rules, which name
// the gone ENI's table. Its DEL releases the pending entry, whose table
// ipamd no longer knows (the reply says main, so the plugin deletes only
// the to-pod rule): ipamd deletes the pod's rules itself, as no other pod
// holds the address. Before, the from-pod rule stayed and would misroute
// the next pod given the address.
func TestDELOfPodWhoseENIWentWhileDownDeletesItsRules(t *testing.T) {
	h, _, stop, victim, second := linkedVictim(t)
	ctx := context.Background()
	holdAddresses(t, h)
	restartWithENIGone(t, h, stop, second)
	h.host.mu.Lock()
	h.host.podRules = nil
	h.host.mu.Unlock()
	reply, err := h.srv.DelNetwork(ctx, delReq("victim"))
	if err != nil || !reply.Success || len(reply.IpAllocationMetadata) != 1 || reply.IpAllocationMetadata[0].Ipv4Addr != victim.String() {
		t.Fatalf("DEL of the pending pod: %+v %v, want %s released", reply, err, victim)
	}
	h.host.mu.Lock()
	defer h.host.mu.Unlock()
	if !slices.Contains(h.host.podRules, victim) {
		t.Errorf("rules deleted: %v, want %s's", h.host.podRules, victim)
	}
}

// TestEvictedPodRewiredWhenItsAddressComesBack: when EC2 hands an evicted
// pod's address to a new ENI of the node, the pod holds it again, and
// ipamd gives it the rules a fresh ADD would, to the new ENI's table (the
// eviction deleted those of the gone ENI). Before, the pod kept no
// from-pod rule: its traffic left by the main table, through an ENI that
// does not hold its address.
func TestEvictedPodRewiredWhenItsAddressComesBack(t *testing.T) {
	h, victim := evictedHarness(t)
	noReissue(t, h, "new-", victim)
	table := 0
	waitFor(t, 10*time.Second, "the victim holding its address on an ENI again", func() bool {
		for _, e := range h.pool(0).ENIs {
			for _, ci := range e.CIDRs {
				for _, a := range ci.Allocations {
					if a.Key.ContainerID == "victim" && a.Addr == victim {
						table = e.RouteTableID
						return true
					}
				}
			}
		}
		return false
	})
	waitFor(t, 10*time.Second, "the victim's rules to its new ENI's table", func() bool {
		h.host.mu.Lock()
		defer h.host.mu.Unlock()
		got, ok := h.host.restored[victim]
		return ok && got == table
	})
}

// restartWithENIGone stops ipamd, deletes the ENI behind its back and
// starts ipamd again on the same checkpoint.
func restartWithENIGone(t *testing.T, h *harness, stop func() error, eni string) {
	t.Helper()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	deleteBehindIpamdsBack(t, h, eni)
	h.connect(h.n.times)
	h.runDaemon()
	waitFor(t, 20*time.Second, "ipamd ready again", h.n.Ready)
}
