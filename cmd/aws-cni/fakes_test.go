package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/trailer"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// fakeIpamd serves the CNIBackend contract from a map: each ADD takes the
// next prepared allocation, each DEL returns and forgets it. It records
// every request so tests can assert what the plugin asked for.
type fakeIpamd struct {
	rpc.UnimplementedCNIBackendServer
	socket string
	srv    *grpc.Server

	mu     sync.Mutex
	next   []allocation
	held   map[string][]allocation // by container ID
	adds   []*rpc.AddNetworkRequest
	dels   []*rpc.DelNetworkRequest
	addErr error // returned by AddNetwork when set
	// assigned, when set, is called once AddNetwork has assigned the
	// addresses, before it answers (without the lock held).
	assigned func()
	refuse   bool   // AddNetwork answers Success=false
	cause    string // with refuse: the cause it sends in the trailer, as ipamd does
	npMode   string
	branch   *branchReply // ADD answers for a branch-ENI pod when set
	// branchGone makes DelNetwork of a branch pod answer as ipamd does
	// once the pod is gone from the API server: success, no address.
	branchGone bool
	healthSv   *health.Server

	// delLate, when set, makes DelNetwork release the address and then
	// answer only once the test closes it: after the plugin's deadline
	// (a checkpoint sync slower than the DEL's time).
	delLate chan struct{}
	// delLeft, when set, makes DelNetwork answer only once that much of
	// the caller's deadline is left (a slow ipamd), then close delDone.
	delLeft time.Duration
	delDone chan struct{}
	// delDeadline is the deadline of the DEL that delLeft slowed, set
	// before delDone closes.
	delDeadline time.Time
}

// branchReply is what ipamd answers for a pod with a branch ENI.
type branchReply struct {
	ip, mac, gw string
	vlan        int32
	parent      int32
}

// allocation is what ipamd hands out for one pod.
type allocation struct {
	ip           string
	deviceNumber int32
	routeTable   int32
}

func (a allocation) meta() *rpc.IPAllocationMetadata {
	m := &rpc.IPAllocationMetadata{DeviceNumber: a.deviceNumber, RouteTableId: a.routeTable}
	if net.ParseIP(a.ip).To4() != nil {
		m.Ipv4Addr = a.ip
	} else {
		m.Ipv6Addr = a.ip
	}
	return m
}

// startFakeIpamd serves on a unix socket in a short temporary directory
// (socket paths are limited to 108 bytes) until the test ends.
func startFakeIpamd(t testing.TB, allocs ...allocation) *fakeIpamd {
	t.Helper()
	dir, err := os.MkdirTemp("", "ipamd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	f := &fakeIpamd{socket: filepath.Join(dir, "ipamd.sock"), next: allocs, held: map[string][]allocation{}}
	f.start(t)
	return f
}

func (f *fakeIpamd) start(t testing.TB) {
	t.Helper()
	ln, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = grpc.NewServer()
	rpc.RegisterCNIBackendServer(f.srv, f)
	f.healthSv = health.NewServer()
	healthpb.RegisterHealthServer(f.srv, f.healthSv)
	go func() { _ = f.srv.Serve(ln) }()
	t.Cleanup(f.stop)
}

// stop makes ipamd unreachable: the socket disappears.
func (f *fakeIpamd) stop() {
	f.srv.Stop()
	_ = os.Remove(f.socket)
}

func (f *fakeIpamd) AddNetwork(ctx context.Context, req *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adds = append(f.adds, req)
	if f.addErr != nil {
		return nil, f.addErr
	}
	if b := f.branch; b != nil {
		f.held[req.GetContainerId()] = []allocation{{ip: b.ip}}
		return &rpc.AddNetworkReply{
			Success:              true,
			IpAllocationMetadata: []*rpc.IPAllocationMetadata{{Ipv4Addr: b.ip, DeviceNumber: -1}},
			PodVlanId:            b.vlan, PodEniMac: b.mac, PodEniSubnetGw: b.gw, ParentIfIndex: b.parent,
		}, nil
	}
	// A multi-NIC request gets one address per network card: two here.
	want := 1
	if req.GetRequiresMultiNicAttachment() {
		want = 2
	}
	if f.refuse || len(f.next) < want {
		if f.refuse && f.cause != "" {
			if err := grpc.SetTrailer(ctx, metadata.Pairs(trailer.Cause, f.cause)); err != nil {
				return nil, err
			}
		}
		return &rpc.AddNetworkReply{Success: false}, nil
	}
	allocs := f.next[:want]
	f.next = f.next[want:]
	f.held[req.GetContainerId()] = allocs
	if hook := f.assigned; hook != nil {
		f.mu.Unlock()
		hook()
		f.mu.Lock()
	}
	return &rpc.AddNetworkReply{
		Success:              true,
		IpAllocationMetadata: metas(allocs),
		NetworkPolicyMode:    f.npMode,
	}, nil
}

func (f *fakeIpamd) DelNetwork(ctx context.Context, req *rpc.DelNetworkRequest) (*rpc.DelNetworkReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dels = append(f.dels, req)
	allocs, ok := f.held[req.GetContainerId()]
	if !ok {
		return &rpc.DelNetworkReply{Success: false}, status.Error(codes.Unknown, "datastore: unknown pod")
	}
	delete(f.held, req.GetContainerId())
	if late := f.delLate; late != nil {
		f.mu.Unlock()
		<-late
		f.mu.Lock()
	}
	if dl, ok := ctx.Deadline(); ok && f.delLeft > 0 {
		f.mu.Unlock()
		select {
		case <-time.After(time.Until(dl) - f.delLeft):
		case <-ctx.Done():
		}
		f.mu.Lock()
		f.delDeadline = dl
		defer close(f.delDone)
	}
	if b := f.branch; b != nil {
		if f.branchGone {
			return &rpc.DelNetworkReply{Success: true}, nil
		}
		return &rpc.DelNetworkReply{Success: true, IpAllocationMetadata: metas(allocs), PodVlanId: b.vlan}, nil
	}
	return &rpc.DelNetworkReply{
		Success:              true,
		IpAllocationMetadata: metas(allocs),
		NetworkPolicyMode:    f.npMode,
	}, nil
}

func metas(allocs []allocation) []*rpc.IPAllocationMetadata {
	m := make([]*rpc.IPAllocationMetadata, 0, len(allocs))
	for _, a := range allocs {
		m = append(m, a.meta())
	}
	return m
}

// holds reports whether ipamd still holds an address for the container.
func (f *fakeIpamd) holds(containerID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.held[containerID]
	return ok
}

// releases returns the reasons of the DELs ipamd saw for the container.
func (f *fakeIpamd) releases(containerID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var reasons []string
	for _, d := range f.dels {
		if d.GetContainerId() == containerID {
			reasons = append(reasons, d.GetReason())
		}
	}
	return reasons
}

// fakeNPA is the network policy agent's side of the contract.
type fakeNPA struct {
	rpc.UnimplementedNPBackendServer
	socket string
	srv    *grpc.Server

	mu       sync.Mutex
	enforced []*rpc.EnforceNpRequest
	deleted  []*rpc.DeleteNpRequest
	// applied is every request's pod and whether it enforced (true) or
	// deleted (false), in the order the agent carried them out.
	applied []npEffect

	// deleteSlow, when set, makes DeletePodNp carry out a delete only once
	// that long has passed or an enforce for the same pod came in since
	// (an agent busy with the pod), and deleteSeen is closed when the
	// first such delete arrives.
	deleteSlow time.Duration
	deleteSeen chan struct{}
	// deleteIn, when set, gets a value as each slow delete arrives.
	deleteIn  chan struct{}
	enforceIn chan struct{} // closed and replaced on each enforce
	// onEnforce, when set, is called as each enforce arrives, before the
	// agent answers (without the lock held).
	onEnforce func()
}

// npEffect is one request the agent carried out.
type npEffect struct {
	namespace, name string
	enforce         bool
}

func startFakeNPA(t *testing.T) *fakeNPA {
	t.Helper()
	f := newFakeNPA(t)
	f.start(t)
	return f
}

// newFakeNPA is an agent not serving yet (restarting): start serves.
func newFakeNPA(t *testing.T) *fakeNPA {
	t.Helper()
	dir, err := os.MkdirTemp("", "npa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return &fakeNPA{socket: filepath.Join(dir, "npa.sock")}
}

func (f *fakeNPA) start(t *testing.T) {
	t.Helper()
	if err := f.serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.stop)
}

// serve starts serving on f.socket; the caller stops it.
func (f *fakeNPA) serve() error {
	ln, err := net.Listen("unix", f.socket)
	if err != nil {
		return err
	}
	f.serveOn(ln)
	return nil
}

// serveOn starts serving on ln, which may have held connections unanswered
// (an agent still starting); the caller stops it.
func (f *fakeNPA) serveOn(ln net.Listener) {
	f.srv = grpc.NewServer()
	rpc.RegisterNPBackendServer(f.srv, f)
	go func() { _ = f.srv.Serve(ln) }()
}

// stop makes the agent unreachable: the socket disappears.
func (f *fakeNPA) stop() {
	if f.srv != nil {
		f.srv.Stop()
	}
	_ = os.Remove(f.socket)
}

func (f *fakeNPA) EnforceNpToPod(_ context.Context, req *rpc.EnforceNpRequest) (*rpc.EnforceNpReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if hook := f.onEnforce; hook != nil {
		f.mu.Unlock()
		hook()
		f.mu.Lock()
	}
	f.enforced = append(f.enforced, req)
	f.applied = append(f.applied, npEffect{req.GetK8SPodNamespace(), req.GetK8SPodName(), true})
	if f.enforceIn != nil {
		close(f.enforceIn)
		f.enforceIn = make(chan struct{})
	}
	return &rpc.EnforceNpReply{Success: true}, nil
}

func (f *fakeNPA) DeletePodNp(_ context.Context, req *rpc.DeleteNpRequest) (*rpc.DeleteNpReply, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.deleteSlow > 0 {
		if f.enforceIn == nil {
			f.enforceIn = make(chan struct{})
		}
		enforced := f.enforceIn
		if f.deleteSeen != nil {
			close(f.deleteSeen)
			f.deleteSeen = nil
		}
		if f.deleteIn != nil {
			f.deleteIn <- struct{}{}
		}
		f.mu.Unlock()
		select {
		case <-enforced:
		case <-time.After(f.deleteSlow):
		}
		f.mu.Lock()
	}
	f.deleted = append(f.deleted, req)
	f.applied = append(f.applied, npEffect{req.GetK8SPodNamespace(), req.GetK8SPodName(), false})
	return &rpc.DeleteNpReply{Success: true}, nil
}

// enforcing reports whether the agent enforces policies on pod
// namespace/name: it was asked to, and not told since that the pod is gone.
func (f *fakeNPA) enforcing(namespace, name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	on := false
	for _, e := range f.applied {
		if e.namespace == namespace && e.name == name {
			on = e.enforce
		}
	}
	return on
}

// addsFor returns the pod names of the ADDs ipamd saw for the container.
func (f *fakeIpamd) addsFor(containerID string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var pods []string
	for _, a := range f.adds {
		if a.GetContainerId() == containerID {
			pods = append(pods, a.GetK8SPodName())
		}
	}
	return pods
}
