package ipamd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/version"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// HealthService is the service name upstream's probes ask for, besides "".
const HealthService = "grpc.health.v1.aws-node"

// Server serves CNIBackend, ConfigServerBackend and grpc.health.v1 for an
// IPAM on a unix socket.
type Server struct {
	rpc.UnimplementedCNIBackendServer
	rpc.UnimplementedConfigServerBackendServer
	n      *IPAM
	grpc   *grpc.Server
	health *health.Server
	cidrs  atomic.Pointer[replyCIDRs]
}

// NewServer registers the services; health answers NOT_SERVING until the
// node is initialised.
func NewServer(n *IPAM) *Server {
	s := &Server{n: n, grpc: grpc.NewServer(serverOptions()...), health: health.NewServer()}
	rpc.RegisterCNIBackendServer(s.grpc, s)
	rpc.RegisterConfigServerBackendServer(s.grpc, s)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	for _, svc := range []string{"", HealthService} {
		s.health.SetServingStatus(svc, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	return s
}

// streamWorkers is how many goroutines serve calls; a call that finds
// them all busy (ADDs waiting for the pool) gets a goroutine of its own,
// as without workers.
const streamWorkers = 8

// serverOptions tune the transport for small unary calls on a local
// socket, where every ADD's reply waits for them (bench/README.md,
// figure 21):
//   - stream workers keep their grown stacks, so a call does not start a
//     goroutine and grow its stack again;
//   - static flow-control windows (HTTP/2's default 64 KiB) turn off the
//     bandwidth probe, which answers each request's data with a window
//     update and a PING the client must acknowledge: two extra writes and
//     reads per call for messages of a few hundred bytes.
func serverOptions() []grpc.ServerOption {
	const window = 65535 // HTTP/2's initial window: no SETTINGS change
	return []grpc.ServerOption{
		grpc.NumStreamWorkers(streamWorkers),
		grpc.StaticStreamWindowSize(window),
		grpc.StaticConnWindowSize(window),
	}
}

// Listen prepares the unix socket: parent directory 0755, a stale socket
// removed, the socket 0660.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the socket directory: %w", err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		_ = l.Close() // the chmod error is the one worth returning
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return l, nil
}

// Serve serves on l until ctx ends, then drains in-flight calls (bounded
// by drain) and stops.
func (s *Server) Serve(ctx context.Context, l net.Listener, drain time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- s.grpc.Serve(l) }()
	select {
	case <-s.n.ready.done():
		s.setHealth()
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("gRPC server: %w", err)
	}
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-s.n.cpHealth.changed():
			s.setHealth()
		case err := <-errc:
			return fmt.Errorf("gRPC server: %w", err)
		}
	}
	s.health.Shutdown()
	done := make(chan struct{})
	go func() { s.grpc.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(drain):
		s.grpc.Stop()
		<-done
	}
	return nil
}

// setHealth answers SERVING once the node is initialised and while every
// checkpoint can be written.
func (s *Server) setHealth() {
	st := healthpb.HealthCheckResponse_SERVING
	if !s.n.Ready() || !s.n.CheckpointWritable() {
		st = healthpb.HealthCheckResponse_NOT_SERVING
	}
	for _, svc := range []string{"", HealthService} {
		s.health.SetServingStatus(svc, st)
	}
}

func key(networkName, containerID, ifName string) datastore.Key {
	return datastore.Key{NetworkName: networkName, ContainerID: containerID, IfName: ifName}
}

func (s *Server) checkVersion(method, clientVersion string) {
	if clientVersion != version.Version && clientVersion != "" {
		s.n.log.Debug("client version differs from ipamd's (accepted)", "method", method,
			"client", clientVersion, "ipamd", version.Version)
	}
}

// waitReady blocks until Init completed or ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	if err := s.n.WaitReady(ctx); err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	return nil
}

// waitReadyBy is waitReady until the answer is due; an initialised node
// makes no context for it.
func (s *Server) waitReadyBy(d *due) error {
	if s.n.Ready() {
		return nil
	}
	return s.waitReady(d.context())
}

// AddNetwork hands the pod an address. On an empty pool it asks the pool
// manager for more at once and waits, until the request's deadline (or
// Intervals.AddWait when it has none), instead of failing.
func (s *Server) AddNetwork(ctx context.Context, req *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, error) {
	start := time.Now()
	r, cause, err := s.addNetwork(ctx, req)
	s.logAdd(ctx, req, r, cause, err, start)
	return r, err
}

func (s *Server) addNetwork(ctx context.Context, req *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, string, error) {
	n := s.n
	// Every request counts, refused ones too, as upstream counts it first.
	n.metrics.AddIPRequests.Inc()
	s.checkVersion("AddNetwork", req.GetClientVersion())
	if err := checkLengths(req); err != nil {
		return nil, "", err
	}
	if cause := addRefusal(req, n.cfg.EnableMultiNIC); cause != "" {
		refuse(ctx, cause)
		return &rpc.AddNetworkReply{Success: false, NetworkPolicyMode: n.cfg.NetworkPolicyEnforcingMode}, cause, nil
	}
	r, err := s.addNetworkChecked(ctx, req)
	return r, "", err
}

func (s *Server) addNetworkChecked(ctx context.Context, req *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, error) {
	n := s.n
	d := n.handout.dueBy(ctx)
	defer d.end()
	if err := s.waitReadyBy(&d); err != nil {
		return nil, err
	}
	if r, handled, err := s.branchAdd(&d, req); handled {
		if err != nil {
			n.metrics.PodENIErrors.WithLabelValues("AddNetwork").Inc()
		}
		return r, err
	}
	k := key(req.GetNetworkName(), req.GetContainerId(), req.GetIfName())
	meta := datastore.Metadata{K8sPodNamespace: req.GetK8SPodNamespace(), K8sPodName: req.GetK8SPodName()}
	asgs, err := n.handout.AssignPod(&d, k, meta, req.GetRequiresMultiNicAttachment())
	switch {
	case errors.Is(err, ErrShuttingDown):
		return nil, status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, ErrNoAddress):
		return nil, status.Error(codes.ResourceExhausted, err.Error())
	case err != nil:
		return nil, status.Error(codes.Internal, err.Error())
	}
	return s.addReply(asgs), nil
}

func (s *Server) addReply(asgs []datastore.Assignment) *rpc.AddNetworkReply {
	n := s.n
	r := &rpc.AddNetworkReply{Success: true, NetworkPolicyMode: n.cfg.NetworkPolicyEnforcingMode}
	for _, a := range asgs {
		r.IpAllocationMetadata = append(r.IpAllocationMetadata, allocationMetadata(a.Addr, a.DeviceNumber, a.RouteTableID))
	}
	if n.cfg.EnableIPv6 {
		// No SNAT in IPv6: upstream names external SNAT in IPv4 replies only.
		for _, p := range n.node.vpcV6CIDRs {
			r.VpcV6Cidrs = append(r.VpcV6Cidrs, p.String())
		}
		return r
	}
	r.UseExternalSnat = n.cfg.ExternalSNAT
	r.VpcV4Cidrs = s.v4CIDRs()
	return r
}

// replyCIDRs is the VpcV4Cidrs of every IPv4 reply, built again only when
// the VPC's CIDRs change, not per ADD.
type replyCIDRs struct {
	from []netip.Prefix // the VPC CIDRs it was built from
	v4   []string       // shared by replies: never appended to in place (its cap is its len) nor written
}

// v4CIDRs is what an IPv4 reply names as not to SNAT: the VPC's CIDRs and,
// unless SNAT is external, AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS.
func (s *Server) v4CIDRs() []string {
	vpc := s.n.node.vpcCIDRs.get()
	if c := s.cidrs.Load(); c != nil && slices.Equal(c.from, vpc) {
		return c.v4
	}
	var v4 []string
	for _, p := range vpc {
		v4 = append(v4, p.String())
	}
	if !s.n.cfg.ExternalSNAT {
		for _, p := range s.n.cfg.ExcludeSNATCIDRs {
			v4 = append(v4, p.String())
		}
	}
	v4 = slices.Clip(v4)
	s.cidrs.Store(&replyCIDRs{from: slices.Clone(vpc), v4: v4})
	return v4
}

// allocationMetadata is one address of a reply, in the field of its family.
func allocationMetadata(addr netip.Addr, device, table int) *rpc.IPAllocationMetadata {
	md := &rpc.IPAllocationMetadata{DeviceNumber: int32(device), RouteTableId: int32(table)}
	if addr.Is4() {
		md.Ipv4Addr = addr.String()
	} else {
		md.Ipv6Addr = addr.String()
	}
	return md
}

// DelNetwork releases the pod's addresses. It is idempotent: a key ipamd
// does not hold gets an error whose message contains "datastore: unknown
// pod", which every plugin version treats as success.
func (s *Server) DelNetwork(ctx context.Context, req *rpc.DelNetworkRequest) (*rpc.DelNetworkReply, error) {
	start := time.Now()
	r, cause, err := s.delNetwork(ctx, req)
	s.logDel(ctx, req, r, cause, err, start)
	return r, err
}

func (s *Server) delNetwork(ctx context.Context, req *rpc.DelNetworkRequest) (*rpc.DelNetworkReply, string, error) {
	n := s.n
	// Every request counts, refused ones too, as upstream counts it first.
	reason := req.GetReason()
	if reason == "" {
		reason = "PodDeleted"
	}
	n.metrics.DelIPRequests.WithLabelValues(reason).Inc()
	s.checkVersion("DelNetwork", req.GetClientVersion())
	if err := checkLengths(req); err != nil {
		return nil, "", err
	}
	if cause := delRefusal(req); cause != "" {
		refuse(ctx, cause)
		return &rpc.DelNetworkReply{Success: false, NetworkPolicyMode: n.cfg.NetworkPolicyEnforcingMode}, cause, nil
	}
	r, err := s.delNetworkChecked(ctx, req)
	return r, "", err
}

func (s *Server) delNetworkChecked(ctx context.Context, req *rpc.DelNetworkRequest) (*rpc.DelNetworkReply, error) {
	n := s.n
	d := n.handout.dueBy(ctx)
	defer d.end()
	if err := s.waitReadyBy(&d); err != nil {
		return nil, err
	}
	k := key(req.GetNetworkName(), req.GetContainerId(), req.GetIfName())
	released, err := n.handout.ReleasePod(&d, k, req.GetK8SPodNamespace(), req.GetK8SPodName())
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	if len(released) == 0 {
		if br, handled, err := s.branchDel(&d, req); handled {
			if err != nil {
				n.metrics.PodENIErrors.WithLabelValues("DelNetwork").Inc()
			}
			return br, err
		}
		// Upstream's code and text, which every plugin version treats as
		// an idempotent success.
		return nil, status.Errorf(codes.Unknown, "%v: %s", datastore.ErrUnknownPod, k)
	}
	r := &rpc.DelNetworkReply{Success: true, NetworkPolicyMode: n.cfg.NetworkPolicyEnforcingMode}
	for _, a := range released {
		r.IpAllocationMetadata = append(r.IpAllocationMetadata, allocationMetadata(a.Addr, a.DeviceNumber, a.RouteTableID))
	}
	return r, nil
}

// GetNetworkPolicyConfigs answers the network-policy agent.
func (s *Server) GetNetworkPolicyConfigs(ctx context.Context, _ *emptypb.Empty) (*rpc.NetworkPolicyAgentConfigReply, error) {
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	n := s.n
	r := &rpc.NetworkPolicyAgentConfigReply{
		NetworkPolicyMode: n.cfg.NetworkPolicyEnforcingMode,
		MultiNicEnabled:   n.cfg.EnableMultiNIC,
		InstanceId:        n.node.id.InstanceID,
		Region:            n.node.id.Region,
	}
	if n.cfg.EnableIPv6 {
		if n.node.id.PrimaryIPv6.IsValid() {
			r.NodeIpv6 = n.node.id.PrimaryIPv6.String()
		}
	} else if n.node.id.LocalIPv4.IsValid() {
		r.NodeIpv4 = n.node.id.LocalIPv4.String()
	}
	return r, nil
}
