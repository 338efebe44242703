package ipamclient

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// server is a grpc-go server with the generated services: what the
// plugin's client must interoperate with.
type server struct {
	rpc.UnimplementedCNIBackendServer
	rpc.UnimplementedNPBackendServer
	socket string
	health *health.Server

	gotAdd  chan *rpc.AddNetworkRequest
	gotDel  chan *rpc.DelNetworkRequest
	gotNp   chan proto.Message
	addFn   func(context.Context, *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, error)
	delFn   func(context.Context, *rpc.DelNetworkRequest) (*rpc.DelNetworkReply, error)
	stopped chan struct{}
}

func socketPath(t *testing.T) string {
	dir, err := os.MkdirTemp("", "ipc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

func startServer(t *testing.T, socket string) *server {
	t.Helper()
	s := &server{socket: socket, gotAdd: make(chan *rpc.AddNetworkRequest, 8), gotDel: make(chan *rpc.DelNetworkRequest, 8), gotNp: make(chan proto.Message, 8)}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	rpc.RegisterCNIBackendServer(srv, s)
	rpc.RegisterNPBackendServer(srv, s)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(srv, s.health)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return s
}

func (s *server) AddNetwork(ctx context.Context, req *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, error) {
	s.gotAdd <- req
	return s.addFn(ctx, req)
}

func (s *server) DelNetwork(ctx context.Context, req *rpc.DelNetworkRequest) (*rpc.DelNetworkReply, error) {
	s.gotDel <- req
	return s.delFn(ctx, req)
}

func (s *server) EnforceNpToPod(_ context.Context, req *rpc.EnforceNpRequest) (*rpc.EnforceNpReply, error) {
	s.gotNp <- req
	return &rpc.EnforceNpReply{Success: true}, nil
}

func (s *server) DeletePodNp(_ context.Context, req *rpc.DeleteNpRequest) (*rpc.DeleteNpReply, error) {
	s.gotNp <- req
	return &rpc.DeleteNpReply{Success: false}, nil
}

func grpcClient(t *testing.T, socket string) rpc.CNIBackendClient {
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecureCreds()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return rpc.NewCNIBackendClient(conn)
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestEveryFieldRoundTrips(t *testing.T) {
	s := startServer(t, socketPath(t))
	c := &Client{Socket: s.socket}
	full := &rpc.AddNetworkReply{
		Success: true,
		IpAllocationMetadata: []*rpc.IPAllocationMetadata{
			{Ipv4Addr: "10.0.0.5", DeviceNumber: 3, RouteTableId: 4},
			{Ipv6Addr: "2001:db8::5", DeviceNumber: -1, RouteTableId: -2147483648},
		},
		UseExternalSnat: true, VpcV4Cidrs: []string{"10.0.0.0/16", "10.1.0.0/16"}, PodVlanId: 4094,
		PodEniMac: "0a:00:00:00:00:01", PodEniSubnetGw: "10.0.0.1", ParentIfIndex: 2147483647,
		VpcV6Cidrs: []string{"2001:db8::/56"}, NetworkPolicyMode: "strict",
	}
	s.addFn = func(context.Context, *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, error) { return full, nil }
	req := &AddNetworkRequest{"pod ü", "ns", "infra", "/var/run/netns/x", "eth0", "aws-cni", "cid", "v1", true, ""}
	reply, _, err := c.AddNetwork(ctxT(t, 5*time.Second), req)
	if err != nil {
		t.Fatal(err)
	}
	want := &rpc.AddNetworkRequest{K8SPodName: "pod ü", K8SPodNamespace: "ns", K8SPodInfraContainerId: "infra", Netns: "/var/run/netns/x",
		IfName: "eth0", NetworkName: "aws-cni", ContainerId: "cid", ClientVersion: "v1", RequiresMultiNicAttachment: true}
	if got := <-s.gotAdd; !proto.Equal(got, want) {
		t.Errorf("server got %v, want %v", got, want)
	}
	wantReply := &AddNetworkReply{
		Success: true,
		IpAllocationMetadata: []*IPAllocationMetadata{
			{Ipv4Addr: "10.0.0.5", DeviceNumber: 3, RouteTableId: 4},
			{Ipv6Addr: "2001:db8::5", DeviceNumber: -1, RouteTableId: -2147483648},
		},
		UseExternalSnat: true, VpcV4Cidrs: []string{"10.0.0.0/16", "10.1.0.0/16"}, PodVlanId: 4094,
		PodEniMac: "0a:00:00:00:00:01", PodEniSubnetGw: "10.0.0.1", ParentIfIndex: 2147483647,
		VpcV6Cidrs: []string{"2001:db8::/56"}, NetworkPolicyMode: "strict",
	}
	if d := cmp.Diff(wantReply, reply); d != "" {
		t.Errorf("AddNetwork reply (-want +got):\n%s", d)
	}

	s.delFn = func(context.Context, *rpc.DelNetworkRequest) (*rpc.DelNetworkReply, error) {
		return &rpc.DelNetworkReply{Success: true, IpAllocationMetadata: full.IpAllocationMetadata, PodVlanId: -7, NetworkPolicyMode: "standard"}, nil
	}
	dreply, err := c.DelNetwork(ctxT(t, 5*time.Second), &DelNetworkRequest{"p", "n", "i", "PodDeleted", "eth0", "net", "c", "v", "uid"})
	if err != nil {
		t.Fatal(err)
	}
	wantDel := &rpc.DelNetworkRequest{K8SPodName: "p", K8SPodNamespace: "n", K8SPodInfraContainerId: "i", Reason: "PodDeleted", IfName: "eth0",
		NetworkName: "net", ContainerId: "c", ClientVersion: "v", K8SPodUid: "uid"}
	if got := <-s.gotDel; !proto.Equal(got, wantDel) {
		t.Errorf("server got %v, want %v", got, wantDel)
	}
	if d := cmp.Diff(&DelNetworkReply{Success: true, IpAllocationMetadata: wantReply.IpAllocationMetadata, PodVlanId: -7, NetworkPolicyMode: "standard"}, dreply); d != "" {
		t.Errorf("DelNetwork reply (-want +got):\n%s", d)
	}

	np := &Client{Socket: s.socket, WaitForReady: true}
	ok, err := np.EnforceNpToPod(ctxT(t, 5*time.Second), &EnforceNpRequest{"p", "n", "strict", -3})
	if err != nil || !ok {
		t.Fatalf("EnforceNpToPod = %v, %v", ok, err)
	}
	if got, want := <-s.gotNp, (&rpc.EnforceNpRequest{K8SPodName: "p", K8SPodNamespace: "n", NetworkPolicyMode: "strict", InterfaceCount: -3}); !proto.Equal(got, want) {
		t.Errorf("server got %v, want %v", got, want)
	}
	ok, err = np.DeletePodNp(ctxT(t, 5*time.Second), &DeleteNpRequest{"p", "n"})
	if err != nil || ok {
		t.Fatalf("DeletePodNp = %v, %v; want false, nil", ok, err)
	}
	if got, want := <-s.gotNp, (&rpc.DeleteNpRequest{K8SPodName: "p", K8SPodNamespace: "n"}); !proto.Equal(got, want) {
		t.Errorf("server got %v, want %v", got, want)
	}
}

// TestAddSendsPodUIDAsMetadata: the pod's UID reaches a grpc-go server as
// metadata (hostcontract.PodUIDMetadata) beside an unchanged message; a
// value gRPC would refuse (not printable ASCII) is left out, and the call
// still succeeds.
func TestAddSendsPodUIDAsMetadata(t *testing.T) {
	s := startServer(t, socketPath(t))
	c := &Client{Socket: s.socket}
	got := make(chan []string, 2)
	s.addFn = func(ctx context.Context, _ *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		got <- md.Get(hostcontract.PodUIDMetadata)
		return &rpc.AddNetworkReply{Success: true}, nil
	}
	for _, tc := range []struct{ uid, want string }{
		{"6f1c2a9e-0b4d-4c1e-9f3a-2d5e7b8c9a01", "6f1c2a9e-0b4d-4c1e-9f3a-2d5e7b8c9a01"},
		{"uid\nwith-newline", ""},
		{"", ""},
	} {
		if _, _, err := c.AddNetwork(ctxT(t, 5*time.Second), &AddNetworkRequest{ContainerId: "c", PodUID: tc.uid}); err != nil {
			t.Fatalf("AddNetwork with pod UID %q: %v", tc.uid, err)
		}
		<-s.gotAdd
		if v := <-got; strings.Join(v, ",") != tc.want {
			t.Errorf("pod UID %q reached the server as %q, want %q", tc.uid, v, tc.want)
		}
	}
}

// Our encoding is byte for byte protobuf-go's, empty fields included.
func TestEncodingMatchesProtobuf(t *testing.T) {
	cases := []struct {
		ours []byte
		pb   proto.Message
	}{
		{(&AddNetworkRequest{}).marshal(), &rpc.AddNetworkRequest{}},
		{(&AddNetworkRequest{K8SPodName: "a", Netns: "/n", RequiresMultiNicAttachment: true}).marshal(), &rpc.AddNetworkRequest{K8SPodName: "a", Netns: "/n", RequiresMultiNicAttachment: true}},
		{(&DelNetworkRequest{Reason: "r", K8SPodUid: strings.Repeat("u", 300)}).marshal(), &rpc.DelNetworkRequest{Reason: "r", K8SPodUid: strings.Repeat("u", 300)}},
		{(&EnforceNpRequest{InterfaceCount: -1}).marshal(), &rpc.EnforceNpRequest{InterfaceCount: -1}},
		{(&DeleteNpRequest{K8SPodNamespace: "x"}).marshal(), &rpc.DeleteNpRequest{K8SPodNamespace: "x"}},
	}
	for i, c := range cases {
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.pb)
		if err != nil {
			t.Fatal(err)
		}
		if string(c.ours) != string(want) {
			t.Errorf("case %d: ours %x, protobuf %x", i, c.ours, want)
		}
	}
}

// Status codes, messages and trailers read as grpc-go's client reads them.
func TestStatusAndTrailersMatchGRPC(t *testing.T) {
	s := startServer(t, socketPath(t))
	msg := "datastore: unknown pod 100% ü\nline2"
	s.addFn = func(ctx context.Context, _ *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, error) {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("vpc-cni-cause", "no free address", "vpc-cni-cause", "second", "x-bin", "\x00\x01"))
		return &rpc.AddNetworkReply{Success: false}, nil
	}
	reply, md, err := (&Client{Socket: s.socket}).AddNetwork(ctxT(t, 5*time.Second), &AddNetworkRequest{})
	if err != nil || reply.Success {
		t.Fatalf("AddNetwork = %+v, %v", reply, err)
	}
	if got := md.Get("vpc-cni-cause"); !cmp.Equal(got, []string{"no free address", "second"}) {
		t.Errorf("cause trailer %q", got)
	}
	if got := md.Get("x-bin"); !cmp.Equal(got, []string{"\x00\x01"}) {
		t.Errorf("binary trailer %q", got)
	}
	for _, code := range []codes.Code{codes.Unknown, codes.ResourceExhausted, codes.FailedPrecondition, codes.Internal} {
		s.delFn = func(context.Context, *rpc.DelNetworkRequest) (*rpc.DelNetworkReply, error) {
			return nil, status.Error(code, msg)
		}
		_, ours := (&Client{Socket: s.socket}).DelNetwork(ctxT(t, 5*time.Second), &DelNetworkRequest{})
		<-s.gotDel
		_, theirs := grpcClient(t, s.socket).DelNetwork(ctxT(t, 5*time.Second), &rpc.DelNetworkRequest{})
		<-s.gotDel
		if ours == nil || ours.Error() != theirs.Error() || CodeOf(ours) != Code(code) || MessageOf(ours) != msg {
			t.Errorf("code %v: ours %v, grpc-go %v", code, ours, theirs)
		}
	}
	// A service the server lacks.
	_, err = (&Client{Socket: s.socket}).Check(ctxT(t, 5*time.Second), "nope")
	if CodeOf(err) != NotFound {
		t.Errorf("health of an unknown service: %v, want NotFound", err)
	}
	st, err := (&Client{Socket: s.socket}).Check(ctxT(t, 5*time.Second), "")
	if err != nil || st != HealthServing {
		t.Errorf("health = %v, %v; want SERVING", st, err)
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if st, err := (&Client{Socket: s.socket}).Check(ctxT(t, 5*time.Second), ""); err != nil || st != HealthNotServing {
		t.Errorf("health = %v, %v; want NOT_SERVING", st, err)
	}
}

func TestDeadlineAndCancelReachTheServer(t *testing.T) {
	s := startServer(t, socketPath(t))
	serverDone := make(chan error, 1)
	s.delFn = func(ctx context.Context, req *rpc.DelNetworkRequest) (*rpc.DelNetworkReply, error) {
		if _, ok := ctx.Deadline(); !ok && req.GetReason() == "deadline" {
			serverDone <- errors.New("no deadline")
			return nil, nil
		}
		<-ctx.Done()
		serverDone <- ctx.Err()
		return nil, ctx.Err()
	}
	c := &Client{Socket: s.socket}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.DelNetwork(ctx, &DelNetworkRequest{Reason: "deadline"}); CodeOf(err) != DeadlineExceeded {
		t.Errorf("past deadline: %v, want DeadlineExceeded", err)
	}
	if err := <-serverDone; err == nil || err.Error() == "no deadline" {
		t.Errorf("server side: %v", err)
	}
	// Take the first call's request before the canceller starts: were the
	// canceller to take it, the second call would never be made.
	<-s.gotDel
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { <-s.gotDel; cancel2() }()
	if _, err := c.DelNetwork(ctx2, &DelNetworkRequest{}); CodeOf(err) != Canceled {
		t.Errorf("canceled: %v, want Canceled", err)
	}
	if err := <-serverDone; !errors.Is(err, context.Canceled) {
		t.Errorf("server saw %v, want canceled", err)
	}
}

func TestSizeLimits(t *testing.T) {
	s := startServer(t, socketPath(t))
	big := strings.Repeat("x", 3<<20)
	s.addFn = func(_ context.Context, req *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, error) {
		n := len(req.GetK8SPodName())
		if req.GetNetns() == "huge" {
			n = 5 << 20
		}
		return &rpc.AddNetworkReply{Success: true, PodEniMac: strings.Repeat("y", n)}, nil
	}
	c := &Client{Socket: s.socket}
	// 3 MiB each way: within the limit, past every flow-control window.
	reply, _, err := c.AddNetwork(ctxT(t, 10*time.Second), &AddNetworkRequest{K8SPodName: big})
	if err != nil || len(reply.PodEniMac) != len(big) {
		t.Fatalf("3 MiB each way: %v", err)
	}
	<-s.gotAdd
	_, _, err = c.AddNetwork(ctxT(t, 10*time.Second), &AddNetworkRequest{Netns: "huge"})
	_, theirs := grpcClient(t, s.socket).AddNetwork(ctxT(t, 10*time.Second), &rpc.AddNetworkRequest{Netns: "huge"})
	if CodeOf(err) != ResourceExhausted || status.Code(theirs) != codes.ResourceExhausted {
		t.Errorf("5 MiB reply: ours %v, grpc-go %v; want ResourceExhausted", err, theirs)
	}
	_, _, err = c.AddNetwork(ctxT(t, 10*time.Second), &AddNetworkRequest{K8SPodName: strings.Repeat("z", 5<<20)})
	if CodeOf(err) != ResourceExhausted {
		t.Errorf("5 MiB request: %v, want ResourceExhausted", err)
	}
}

func TestServerDown(t *testing.T) {
	socket := socketPath(t)
	c := &Client{Socket: socket}
	start := time.Now()
	_, _, err := c.AddNetwork(ctxT(t, 10*time.Second), &AddNetworkRequest{})
	if CodeOf(err) != Unavailable || time.Since(start) > 5*time.Second {
		t.Errorf("fail-fast with no server: %v after %v, want Unavailable at once", err, time.Since(start))
	}
	_, theirs := grpcClient(t, socket).AddNetwork(ctxT(t, 10*time.Second), &rpc.AddNetworkRequest{})
	if status.Code(theirs) != codes.Unavailable {
		t.Errorf("grpc-go: %v", theirs)
	}
	w := &Client{Socket: socket, WaitForReady: true}
	if _, err := w.DeletePodNp(ctxT(t, 300*time.Millisecond), &DeleteNpRequest{}); CodeOf(err) != DeadlineExceeded {
		t.Errorf("wait-for-ready with no server: %v, want DeadlineExceeded", err)
	}
	// Wait-for-ready finds a server that comes up during the call.
	go func() {
		// A pause, not a wait: the scenario is a server that is absent at the
		// first attempt and appears later; no condition marks "attempted".
		time.Sleep(100 * time.Millisecond)
		startServer(t, socket)
	}()
	if _, err := w.DeletePodNp(ctxT(t, 10*time.Second), &DeleteNpRequest{}); err != nil {
		t.Errorf("wait-for-ready with a late server: %v", err)
	}
}

func TestEncodeTimeout(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Nanosecond: "1n", 20 * time.Second: "20000000u", 2 * time.Second: "2000000u", 200 * time.Second: "200000m", 1500 * time.Microsecond: "1500000n"} {
		if got := encodeTimeout(d); got != want {
			t.Errorf("encodeTimeout(%v) = %s, want %s", d, got, want)
		}
	}
}

// TestStartedAddReachesServerBeforeWait: StartAddNetwork sends the whole
// request without waiting for the server's SETTINGS or reply, so grpc-go's
// server handles the call while the caller has not read a byte; Wait then
// returns the reply that waited in the socket.
func TestStartedAddReachesServerBeforeWait(t *testing.T) {
	s := startServer(t, socketPath(t))
	s.addFn = func(_ context.Context, req *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, error) {
		return &rpc.AddNetworkReply{Success: true, PodVlanId: 7}, nil
	}
	ctx := ctxT(t, 10*time.Second)
	pending := (&Client{Socket: s.socket}).StartAddNetwork(ctx, &AddNetworkRequest{K8SPodName: "started"})
	select {
	case req := <-s.gotAdd:
		if req.K8SPodName != "started" {
			t.Fatalf("server got pod %q, want %q", req.K8SPodName, "started")
		}
	case <-ctx.Done():
		t.Fatal("the server never got the started call before Wait")
	}
	reply, _, err := pending.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !reply.Success || reply.PodVlanId != 7 {
		t.Fatalf("reply %+v, want success with VLAN 7", reply)
	}
}

// TestStartedAddToNoServerFailsInWait: a call that cannot connect reports
// Unavailable from Wait, the one place its caller handles errors.
func TestStartedAddToNoServerFailsInWait(t *testing.T) {
	pending := (&Client{Socket: socketPath(t)}).StartAddNetwork(ctxT(t, 5*time.Second), &AddNetworkRequest{})
	if _, _, err := pending.Wait(); CodeOf(err) != Unavailable {
		t.Fatalf("Wait: %v, want code Unavailable", err)
	}
}

// TestSocketPathNotASocket: a directory where the socket should be (a
// hostPath mount made before ipamd created its socket) is named as such;
// the kernel's "connection refused" alone reads as ipamd not listening.
// A wait-for-ready call that runs out of time says why it could not
// connect, in grpc-go's words, instead of only "context deadline exceeded",
// and stops at its deadline.
func TestSocketPathNotASocket(t *testing.T) {
	socket := socketPath(t)
	_, theirs := grpcClient(t, socket).AddNetwork(ctxT(t, 300*time.Millisecond), &rpc.AddNetworkRequest{}, grpc.WaitForReady(true))
	_, _, ours := (&Client{Socket: socket, WaitForReady: true}).AddNetwork(ctxT(t, 300*time.Millisecond), &AddNetworkRequest{})
	if ours == nil || theirs == nil || ours.Error() != theirs.Error() {
		t.Errorf("wait-for-ready to a missing socket:\n ours   %v\n grpc-go %v", ours, theirs)
	}

	if err := os.Mkdir(socket, 0o755); err != nil {
		t.Fatal(err)
	}
	want := socket + " is a directory, not a unix socket"
	_, _, err := (&Client{Socket: socket}).AddNetwork(ctxT(t, 5*time.Second), &AddNetworkRequest{})
	if CodeOf(err) != Unavailable || !strings.Contains(err.Error(), want) {
		t.Errorf("fail-fast to a directory: %v, want Unavailable saying %q", err, want)
	}
	start := time.Now()
	_, err = (&Client{Socket: socket, WaitForReady: true}).DeletePodNp(ctxT(t, 300*time.Millisecond), &DeleteNpRequest{})
	if CodeOf(err) != DeadlineExceeded || !strings.Contains(err.Error(), "latest balancer error") || !strings.Contains(err.Error(), want) {
		t.Errorf("wait-for-ready to a directory: %v, want DeadlineExceeded saying %q", err, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("wait-for-ready to a directory took %v past a 300ms deadline", d)
	}
}
