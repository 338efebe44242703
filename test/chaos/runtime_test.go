package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netlink"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/pkg/localvpc"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
	"github.com/vpc-cni/vpc-cni/rpc"
)

const podNamespace = "chaos"

// runtime is the simulated container runtime plus plugin. mu guards the
// pod model; the counters are atomics read while workers run.
type runtime struct {
	conn  *grpc.ClientConn
	cni   rpc.CNIBackendClient
	intro *http.Client
	links *netlink.Handle
	p     params

	mu         sync.Mutex
	filling    bool // the pod count climbs to maxPods, then falls to 0
	rng        *rand.Rand
	next       int
	live       map[string]netip.Addr // pod → address: ADD answered, no DEL started
	holder     map[netip.Addr]string // address → live pod
	busy       map[string]bool       // pods with a call in flight
	violations []string

	answered, refused           atomic.Int64 // RPCs ipamd answered / could not take
	adds, addFailed, reAdds     atomic.Int64
	dels, delsDown, doubleDels  atomic.Int64
	rollbacks, kills, linkFails atomic.Int64
	refusedCh                   chan struct{} // pinged on each refused call
}

func newRuntime(n *localvpc.Node, links *netlink.Handle, p params) (*runtime, error) {
	conn, err := grpc.NewClient("unix:"+n.SocketPath(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		// Reconnect promptly after a restart instead of backing off for
		// up to two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.5, MaxDelay: 200 * time.Millisecond},
			MinConnectTimeout: time.Second,
		}))
	if err != nil {
		return nil, err
	}
	return &runtime{
		conn: conn, cni: rpc.NewCNIBackendClient(conn), intro: introspectClient(n), links: links, p: p,
		rng: rand.New(rand.NewPCG(1, 2)), filling: true,
		live: map[string]netip.Addr{}, holder: map[netip.Addr]string{}, busy: map[string]bool{},
		refusedCh: make(chan struct{}, 1),
	}, nil
}

func (r *runtime) close() { _ = r.conn.Close() } // nothing to do with an error at the end

func (r *runtime) violate(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.violations = append(r.violations, fmt.Sprintf(format, args...))
}

func (r *runtime) violationList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.violations...)
}

type action int

const (
	actAdd action = iota
	actDel
	actReAdd // duplicate ADD of a live pod: must return its address
)

// pick chooses the next action and its pod, and marks the pod busy.
func (r *runtime) pick() (action, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var idle []string
	for pod := range r.live {
		if !r.busy[pod] {
			idle = append(idle, pod)
		}
	}
	// Pods with an ADD in flight count too, or the workers together
	// would overshoot the node's addresses.
	n := len(r.live) + len(r.busy) - (len(r.live) - len(idle))
	x := r.rng.Float64()
	// The count swings between 0 and maxPods so the pool crosses ENI
	// boundaries both ways again and again; one step in twenty goes
	// against the swing.
	switch {
	case r.filling && n >= r.p.maxPods:
		r.filling = false
	case !r.filling && len(r.live) == 0:
		r.filling = true
	}
	grow := r.filling != (r.rng.Float64() < 0.05)
	var act action
	switch {
	case len(idle) > 0 && x < 0.05:
		act = actReAdd
	case n >= r.p.maxPods || !grow && len(idle) > 0:
		act = actDel
	default:
		act = actAdd
	}
	if act == actAdd || len(idle) == 0 {
		r.next++
		pod := fmt.Sprintf("p%06d", r.next)
		r.busy[pod] = true
		return actAdd, pod
	}
	pod := idle[r.rng.IntN(len(idle))]
	r.busy[pod] = true
	return act, pod
}

func (r *runtime) done(pod string) {
	r.mu.Lock()
	delete(r.busy, pod)
	r.mu.Unlock()
}

// work runs operations until churn ends. The calls themselves use ctx,
// which outlives churn: a call cut short by the end of the churn would
// look like a refused one and leave ipamd holding an address the runtime
// forgot.
func (r *runtime) work(churn, ctx context.Context) {
	for churn.Err() == nil {
		act, pod := r.pick()
		switch act {
		case actAdd:
			r.add(ctx, pod)
		case actDel:
			r.del(ctx, pod)
		case actReAdd:
			r.reAdd(ctx, pod)
		}
		r.done(pod)
	}
}

func addRequest(pod string) *rpc.AddNetworkRequest {
	return &rpc.AddNetworkRequest{
		ContainerId: "c-" + pod, IfName: "eth0", NetworkName: "aws-cni", Netns: "/var/run/netns/" + pod,
		K8SPodName: pod, K8SPodNamespace: podNamespace, K8SPodInfraContainerId: "c-" + pod,
	}
}

// down reports whether err means ipamd could not take the call (not
// running, or killed while answering).
func (r *runtime) down(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled:
		r.refused.Add(1)
		select {
		case r.refusedCh <- struct{}{}:
		default:
		}
		return true
	}
	return false
}

func (r *runtime) add(ctx context.Context, pod string) {
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	resp, err := r.cni.AddNetwork(cctx, addRequest(pod))
	cancel()
	if err != nil && r.down(err) {
		r.pause(ctx)
		r.rollback(ctx, pod) // kubelet tears down a sandbox whose ADD failed
		return
	}
	r.answered.Add(1)
	if err != nil || !resp.GetSuccess() || len(resp.GetIpAllocationMetadata()) == 0 {
		r.addFailed.Add(1) // no address in time (EC2 failing): a valid answer
		r.rollback(ctx, pod)
		return
	}
	addr, perr := netip.ParseAddr(resp.GetIpAllocationMetadata()[0].GetIpv4Addr())
	if perr != nil {
		r.violate("ADD %s: unparsable address %q", pod, resp.GetIpAllocationMetadata()[0].GetIpv4Addr())
		r.rollback(ctx, pod)
		return
	}
	r.adds.Add(1)
	// A veth pair with both ends in the node: the kernel here has no dummy
	// links, and the name is all ipamd's restart looks at.
	link := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: veth(pod)}, PeerName: "c" + veth(pod)[len("eni"):]}
	if err := r.links.LinkAdd(link); err != nil {
		r.linkFails.Add(1)
		r.violate("ADD %s: create host link %s: %v", pod, veth(pod), err)
	}
	r.mu.Lock()
	if other, dup := r.holder[addr]; dup {
		r.violations = append(r.violations, fmt.Sprintf("duplicate: %s given to %s while live pod %s holds it", addr, pod, other))
	}
	r.holder[addr] = pod
	r.live[pod] = addr
	r.mu.Unlock()
}

func (r *runtime) reAdd(ctx context.Context, pod string) {
	r.mu.Lock()
	want := r.live[pod]
	r.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	resp, err := r.cni.AddNetwork(cctx, addRequest(pod))
	cancel()
	if err != nil && r.down(err) {
		r.pause(ctx)
		return
	}
	r.answered.Add(1)
	r.reAdds.Add(1)
	var got string
	if err == nil && resp.GetSuccess() && len(resp.GetIpAllocationMetadata()) > 0 {
		got = resp.GetIpAllocationMetadata()[0].GetIpv4Addr()
	}
	if got != want.String() {
		r.violate("lost pod: repeated ADD of live pod %s (holds %s) answered %q (err %v)", pod, want, got, err)
	}
}

// del deletes a live pod as the plugin does: host link first, then ipamd;
// ipamd down counts as success. Sometimes the runtime repeats the DEL.
func (r *runtime) del(ctx context.Context, pod string) {
	r.mu.Lock()
	addr := r.live[pod]
	delete(r.live, pod)
	delete(r.holder, addr) // before the DEL: the address may be reused after it
	twice := r.rng.Float64() < 0.05
	r.mu.Unlock()
	if err := r.deleteLink(pod); err != nil {
		r.linkFails.Add(1)
		r.violate("DEL %s: delete host link %s: %v", pod, veth(pod), err)
	}
	r.dels.Add(1)
	r.delRPC(ctx, pod)
	if twice {
		r.doubleDels.Add(1)
		r.delRPC(ctx, pod)
	}
}

func (r *runtime) deleteLink(pod string) error {
	l, err := r.links.LinkByName(veth(pod))
	if err != nil {
		return err
	}
	return r.links.LinkDel(l) // takes the peer with it
}

// rollback is the DEL a runtime sends after a failed ADD.
func (r *runtime) rollback(ctx context.Context, pod string) {
	r.rollbacks.Add(1)
	r.delRPC(ctx, pod)
}

func (r *runtime) delRPC(ctx context.Context, pod string) {
	req := &rpc.DelNetworkRequest{ContainerId: "c-" + pod, IfName: "eth0", NetworkName: "aws-cni",
		K8SPodName: pod, K8SPodNamespace: podNamespace, K8SPodInfraContainerId: "c-" + pod, Reason: "PodDeleted"}
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_, err := r.cni.DelNetwork(cctx, req)
		cancel()
		switch {
		case err == nil || strings.Contains(err.Error(), "unknown pod"):
			r.answered.Add(1)
			return
		case r.down(err):
			r.delsDown.Add(1) // the plugin reports success; ipamd must catch up
			return
		case attempt < 3 && ctx.Err() == nil:
			r.answered.Add(1) // kubelet retries a failed DEL
		default:
			r.answered.Add(1)
			r.violate("DEL %s failed %d times: %v", pod, attempt+1, err)
			return
		}
	}
}

// pause slows a worker whose call was refused, so a down agent is not
// hammered; it ends early when the churn stops.
func (r *runtime) pause(ctx context.Context) {
	t := time.NewTimer(20 * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func veth(pod string) string { return vethname.HostVethName("eni", podNamespace, pod, 0) }

// waitOps waits until ipamd has answered n operations.
func (r *runtime) waitOps(ctx context.Context, n int) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last, lastChange := r.answered.Load(), time.Now()
	for r.answered.Load() < int64(n) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d operations answered: %w", r.answered.Load(), n, ctx.Err())
		case <-tick.C:
		}
		if a := r.answered.Load(); a != last {
			last, lastChange = a, time.Now()
		} else if time.Since(lastChange) > 2*time.Minute {
			return fmt.Errorf("no operation answered for 2 minutes (%d of %d)", a, n)
		}
	}
	return nil
}

// waitRefused waits until the runtime has seen n calls refused since the
// kill (ADDs and DELs reached the down agent), or a second passed.
func (r *runtime) waitRefused(ctx context.Context, n int) {
	deadline := time.NewTimer(time.Second)
	defer deadline.Stop()
	for range n {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-r.refusedCh:
		}
	}
}

func (r *runtime) livePods() (map[string]netip.Addr, map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	live := make(map[string]netip.Addr, len(r.live))
	veths := make(map[string]string, len(r.live))
	for pod, a := range r.live {
		live[pod] = a
		veths[veth(pod)] = pod
	}
	return live, veths
}

// deleteAll deletes every live pod with the agent up.
func (r *runtime) deleteAll(ctx context.Context) {
	live, _ := r.livePods()
	for pod := range live {
		r.del(ctx, pod)
	}
}

func (r *runtime) disagreement(ctx context.Context, v *localvpc.VPC, n *localvpc.Node, live map[string]netip.Addr, veths map[string]string) []string {
	host, err := hostPods(r.links)
	if err != nil {
		return []string{err.Error()}
	}
	ip, err := readIPAMD(ctx, r.intro)
	if err != nil {
		return []string{err.Error()}
	}
	return agreement(live, veths, host, ip, readSim(v.Sim, n.ID))
}

func (r *runtime) summary() string {
	return fmt.Sprintf("%d operations answered (%d ADDs given an address, %d ADDs refused for lack of one, %d repeated ADDs, "+
		"%d DELs of which %d repeated, %d rollback DELs), %d calls refused while the agent was down (%d DELs completed by the plugin's fallback)",
		r.answered.Load(), r.adds.Load(), r.addFailed.Load(), r.reAdds.Load(), r.dels.Load(), r.doubleDels.Load(), r.rollbacks.Load(),
		r.refused.Load(), r.delsDown.Load())
}

func (r *runtime) liveCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.live)
}
