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
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/datastore"
	"github.com/vpc-cni/vpc-cni/pkg/version"
	"github.com/vpc-cni/vpc-cni/pkg/vethname"
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
}

// NewServer registers the services; health answers NOT_SERVING until the
// node is initialised.
func NewServer(n *IPAM) *Server {
	s := &Server{n: n, grpc: grpc.NewServer(), health: health.NewServer()}
	rpc.RegisterCNIBackendServer(s.grpc, s)
	rpc.RegisterConfigServerBackendServer(s.grpc, s)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	for _, svc := range []string{"", HealthService} {
		s.health.SetServingStatus(svc, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	return s
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
	case <-s.n.readyCh:
		s.setHealth()
	case <-ctx.Done():
	case err := <-errc:
		return fmt.Errorf("gRPC server: %w", err)
	}
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-s.n.cpHealth.kick:
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

// answerBefore bounds a handler so that its answer (rather than the
// client's own deadline error) reaches the client: it ends a little before
// the request's deadline, or after def when the request has none.
func answerBefore(ctx context.Context, def time.Duration) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithTimeout(ctx, def)
	}
	margin := min(max(time.Until(d)/10, 20*time.Millisecond), time.Second)
	return context.WithDeadline(ctx, d.Add(-margin))
}

// waitReady blocks until Init completed or ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	// Readiness first: with both channels ready, select would pick one at
	// random and a ready ipamd could answer "not initialised".
	select {
	case <-s.n.readyCh:
		return nil
	default:
	}
	select {
	case <-s.n.readyCh:
		return nil
	case <-ctx.Done():
		return status.Error(codes.Unavailable, ErrNotInitialised.Error()+
			": it is still reading the instance, its ENIs and the checkpoint; retry")
	}
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
	s.checkVersion("AddNetwork", req.GetClientVersion())
	if err := checkPodNames(req.GetK8SPodNamespace(), req.GetK8SPodName()); err != nil {
		return nil, "", err
	}
	n.metrics.AddIPRequests.Inc()
	if cause := addRefusal(req, n.cfg.EnableMultiNIC); cause != "" {
		refuse(ctx, cause)
		return &rpc.AddNetworkReply{Success: false, NetworkPolicyMode: n.cfg.NetworkPolicyEnforcingMode}, cause, nil
	}
	r, err := s.addNetworkChecked(ctx, req)
	return r, "", err
}

func (s *Server) addNetworkChecked(ctx context.Context, req *rpc.AddNetworkRequest) (*rpc.AddNetworkReply, error) {
	n := s.n
	ctx, cancel := answerBefore(ctx, n.times.AddWait)
	defer cancel()
	start := time.Now()
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	if r, handled, err := s.branchAdd(ctx, req); handled {
		if err != nil {
			n.metrics.PodENIErrors.WithLabelValues("AddNetwork").Inc()
		}
		return r, err
	}
	k := key(req.GetNetworkName(), req.GetContainerId(), req.GetIfName())
	meta := datastore.Metadata{K8sPodNamespace: req.GetK8SPodNamespace(), K8sPodName: req.GetK8SPodName(), InterfacesCount: 1}
	multi := req.GetRequiresMultiNicAttachment()
	if multi {
		meta.InterfacesCount = len(n.cards)
	}
	waiting := false
	waitStart := time.Now()
	result := "error"
	defer func() {
		if waiting {
			n.pending.Add(-1)
		}
		n.metrics.AddNetworkWait.WithLabelValues(result).Observe(time.Since(waitStart).Seconds())
	}()
	deadline, _ := ctx.Deadline()
	fire := true
	for {
		changed, limited := n.changedCh(), n.limitReached.wait()
		asgs, err := n.assign(k, meta, multi)
		if err == nil {
			if waiting {
				n.log.Info("address handed out after waiting for the pool", "key", k.String(), "waited", time.Since(start))
			}
			result = "ok"
			n.observeAssignments(asgs)
			n.nudgePool()
			s.annotate(ctx, req.GetK8SPodNamespace(), req.GetK8SPodName(), asgs[0].Addr.String(), true)
			return s.addReply(asgs), nil
		}
		if !errors.Is(err, datastore.ErrNoAvailableAddress) {
			return nil, status.Errorf(codes.Internal, "assigning an address to %s: %v", k, err)
		}
		if !waiting {
			waiting = true
			n.pending.Add(1)
		}
		if limit := n.nothingComing(deadline); limit != "" {
			// No refill can come and no cooldown ends in time: fail now
			// and let kubelet retry, as upstream does (docs/compatibility.md,
			// "Deliberate differences").
			result = "exhausted"
			n.metrics.NoAvailableIPs.Inc()
			return nil, status.Error(codes.ResourceExhausted, n.exhaustedCause(err, time.Since(start))+"; node at its hard limit: "+limit)
		}
		if fire {
			n.pool.Fire()
		}
		fire = true
		switch n.waitForAddress(ctx, changed, limited) {
		case waitLimit:
			fire = false // the pool just ran and found no room
		case waitRetry:
		case waitShutdown:
			// The pool will not grow any more: answer now so the drain is quick.
			if asgs, err := n.assign(k, meta, multi); err == nil {
				result = "ok"
				n.observeAssignments(asgs)
				return s.addReply(asgs), nil
			}
			result = "shutdown"
			n.metrics.NoAvailableIPs.Inc()
			return nil, status.Error(codes.Unavailable, "ipamd is shutting down and has no free address; retry on the next ipamd")
		case waitDeadline:
			result = "exhausted"
			n.metrics.NoAvailableIPs.Inc()
			return nil, status.Error(codes.ResourceExhausted, n.exhaustedCause(err, time.Since(start)))
		}
	}
}

type waitOutcome int

const (
	waitRetry    waitOutcome = iota // something changed: try to assign again
	waitLimit                       // the pool found every card at its hard limit
	waitShutdown                    // ipamd is terminating
	waitDeadline                    // the request's time is up
)

// waitForAddress blocks until an address may have become usable: the pool
// grew or an address was released (changed), or the earliest cooldown
// ended (a timer on exactly that moment, not a poll).
func (n *IPAM) waitForAddress(ctx context.Context, changed, limited <-chan struct{}) waitOutcome {
	var wake <-chan time.Time
	if at, ok := n.nextCoolingEnd(); ok {
		t := time.NewTimer(time.Until(at))
		defer t.Stop()
		wake = t.C
	}
	select {
	case <-changed:
		return waitRetry
	case <-limited:
		return waitLimit
	case <-wake:
		return waitRetry
	case <-n.termCh:
		return waitShutdown
	case <-ctx.Done():
		return waitDeadline
	}
}

// nudgePool starts a pool cycle at once when card 0 is below its warm
// target after an assignment and can still grow, so the refill begins now
// rather than at the next tick (a burst's later pods then find addresses).
// A starved card is left to the tick: each cycle asks the API server for
// the node's taints.
func (n *IPAM) nudgePool() {
	if n.cfg.EnableIPv6 || len(n.cards) == 0 {
		return
	}
	c := n.cards[0]
	want := n.cfg.WarmENITarget * max(n.node.typ.IPv4PerENI-1, 0)
	switch {
	case n.cfg.WarmIPTarget > 0 || n.cfg.MinimumIPTarget > 0:
		want = n.cfg.WarmIPTarget
	case c.store.Mode() == datastore.ModePrefixIPv4:
		want = n.cfg.WarmPrefixTarget * 16
	}
	if c.store.Stats().AvailableIPs >= want {
		return
	}
	if starved, _ := c.state(); starved == "" {
		n.pool.Fire()
	}
}

// nothingComing names the hard limit when no address can come before
// deadline: every card is at its hard limit (as the last pool cycle found)
// and no cooldown ends before deadline. "" means an address may come.
func (n *IPAM) nothingComing(deadline time.Time) string {
	var limits []string
	for _, c := range n.cards {
		l := c.fullText()
		if l == "" {
			return ""
		}
		limits = append(limits, l)
	}
	if len(limits) == 0 {
		return ""
	}
	if at, ok := n.nextCoolingEnd(); ok && (deadline.IsZero() || at.Before(deadline)) {
		return ""
	}
	return strings.Join(limits, "; ")
}

// nextCoolingEnd is the earliest cooldown end over every card.
func (n *IPAM) nextCoolingEnd() (time.Time, bool) {
	var first time.Time
	found := false
	for _, c := range n.cards {
		if at, ok := c.store.NextCoolingEnd(); ok && (!found || at.Before(first)) {
			first, found = at, true
		}
	}
	return first, found
}

// assign takes one address on the first card that has one (pods spill to
// cards > 0), or one on every card for a multi-NIC pod, all or nothing.
func (n *IPAM) assign(k datastore.Key, meta datastore.Metadata, multi bool) ([]datastore.Assignment, error) {
	if !multi {
		// A retried ADD gets what the key already holds, on any card: pods
		// spill to cards > 0, so card 0 may have room again by now.
		for _, c := range n.cards {
			if a, ok := c.store.Lookup(k); ok {
				return []datastore.Assignment{a}, nil
			}
		}
		var err error
		for _, c := range n.cards {
			var a datastore.Assignment
			if a, err = c.store.Assign(k, meta); err == nil {
				return []datastore.Assignment{a}, nil
			}
			if !errors.Is(err, datastore.ErrNoAvailableAddress) {
				return nil, err
			}
		}
		return nil, err
	}
	var out []datastore.Assignment
	for _, c := range n.cards {
		a, err := c.store.Assign(k, meta)
		if err != nil {
			for i, done := range out {
				if _, uerr := n.cards[i].store.Unassign(done.Key); uerr != nil {
					n.log.Warn("could not undo a partial multi-NIC assignment", "key", k.String(), "err", uerr)
				}
			}
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

// exhaustedCause names why no address came: the pool's own reason, the
// last EC2 failure, or the datastore's figures.
func (n *IPAM) exhaustedCause(storeErr error, waited time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "no IP address available after waiting %s", waited.Round(time.Millisecond))
	mp := n.maxPodsNow()
	for _, c := range n.cards {
		starved, lastErr := c.state()
		st := c.store.Stats()
		fmt.Fprintf(&b, "; card %d: %d addresses, %d assigned, %d cooling", c.index, st.TotalIPs, st.AssignedIPs, st.CoolingIPs)
		switch {
		case starved != "":
			b.WriteString(": " + starved)
		case lastErr != nil:
			b.WriteString(": " + causeOf(lastErr))
		case mp > 0 && st.Pods >= mp:
			fmt.Fprintf(&b, ": max pods reached (%d)", mp)
		}
	}
	var nae *datastore.NoAvailableAddressError
	if errors.As(storeErr, &nae) && nae.Reason != "" {
		b.WriteString("; datastore: " + nae.Reason)
	}
	return b.String()
}

func (s *Server) addReply(asgs []datastore.Assignment) *rpc.AddNetworkReply {
	n := s.n
	r := &rpc.AddNetworkReply{Success: true, UseExternalSnat: n.cfg.ExternalSNAT, NetworkPolicyMode: n.cfg.NetworkPolicyEnforcingMode}
	for _, a := range asgs {
		r.IpAllocationMetadata = append(r.IpAllocationMetadata, allocationMetadata(a.Addr, a.DeviceNumber, a.RouteTableID))
	}
	n.nodeMu.RLock()
	cidrs, v6 := n.node.vpcCIDRs, n.node.vpcV6CIDRs
	n.nodeMu.RUnlock()
	if n.cfg.EnableIPv6 {
		for _, p := range v6 {
			r.VpcV6Cidrs = append(r.VpcV6Cidrs, p.String())
		}
		return r
	}
	for _, p := range cidrs {
		r.VpcV4Cidrs = append(r.VpcV4Cidrs, p.String())
	}
	if !n.cfg.ExternalSNAT {
		for _, p := range n.cfg.ExcludeSNATCIDRs {
			r.VpcV4Cidrs = append(r.VpcV4Cidrs, p.String())
		}
	}
	return r
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
	s.checkVersion("DelNetwork", req.GetClientVersion())
	if cause := delRefusal(req); cause != "" {
		refuse(ctx, cause)
		return &rpc.DelNetworkReply{Success: false, NetworkPolicyMode: n.cfg.NetworkPolicyEnforcingMode}, cause, nil
	}
	r, err := s.delNetworkChecked(ctx, req)
	return r, "", err
}

func (s *Server) delNetworkChecked(ctx context.Context, req *rpc.DelNetworkRequest) (*rpc.DelNetworkReply, error) {
	n := s.n
	reason := req.GetReason()
	if reason == "" {
		reason = "PodDeleted"
	}
	n.metrics.DelIPRequests.WithLabelValues(reason).Inc()
	ctx, cancel := answerBefore(ctx, n.times.AddWait)
	defer cancel()
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	k := key(req.GetNetworkName(), req.GetContainerId(), req.GetIfName())
	r := &rpc.DelNetworkReply{NetworkPolicyMode: n.cfg.NetworkPolicyEnforcingMode}
	released, err := s.release(k, r)
	if err != nil {
		return nil, err
	}
	if len(released) == 0 && req.GetK8SPodNamespace() != "" && req.GetK8SPodName() != "" {
		// An address recovered from the host after a corrupt checkpoint
		// is known only by the pod's veth name.
		rk := datastore.RecoveredKey(vethname.Suffix(req.GetK8SPodNamespace(), req.GetK8SPodName()))
		if released, err = s.release(rk, r); err != nil {
			return nil, err
		}
	}
	if len(r.IpAllocationMetadata) == 0 {
		if br, handled, err := s.branchDel(ctx, req); handled {
			if err != nil {
				n.metrics.PodENIErrors.WithLabelValues("DelNetwork").Inc()
			}
			return br, err
		}
		// Upstream's code and text, which every plugin version treats as
		// an idempotent success.
		return nil, status.Errorf(codes.Unknown, "%v: %s", datastore.ErrUnknownPod, k)
	}
	r.Success = true
	n.observeAssignments(released)
	if n.pending.Load() > 0 {
		n.broadcast() // with no cooldown the address is usable at once
	}
	if md := r.IpAllocationMetadata[0]; md.Ipv4Addr != "" {
		s.annotate(ctx, req.GetK8SPodNamespace(), req.GetK8SPodName(), md.Ipv4Addr, false)
	} else {
		s.annotate(ctx, req.GetK8SPodNamespace(), req.GetK8SPodName(), md.Ipv6Addr, false)
	}
	return r, nil
}

// release unassigns what k holds on every card, adding it to r.
func (s *Server) release(k datastore.Key, r *rpc.DelNetworkReply) ([]datastore.Assignment, error) {
	n := s.n
	var released []datastore.Assignment
	for _, c := range n.cards {
		// Store.Unassign also matches entries upstream migrated from CRI
		// state (placeholder network and interface) by container id.
		a, err := c.store.Unassign(k)
		switch {
		case errors.Is(err, datastore.ErrUnknownPod):
			continue
		case errors.Is(err, datastore.ErrCheckpoint):
			// The release happened; only persisting it failed, and the next
			// good write persists it. Failing the DEL would strand the address.
			n.log.Warn("address released but the checkpoint write failed", "key", k.String(), "ip", a.Addr,
				"card", c.index, "err", err)
		case err != nil:
			return released, status.Errorf(codes.Internal, "releasing the address of %s: %v", k, err)
		}
		released = append(released, a)
		r.IpAllocationMetadata = append(r.IpAllocationMetadata, allocationMetadata(a.Addr, a.DeviceNumber, a.RouteTableID))
	}
	return released, nil
}

// annotate maintains vpc.amazonaws.com/pod-ips (ANNOTATE_POD_IP). A failure
// is logged: the pod's network works without the annotation.
func (s *Server) annotate(ctx context.Context, ns, name, ip string, add bool) {
	n := s.n
	if !n.cfg.AnnotatePodIP || n.kubeClient() == nil || name == "" {
		return
	}
	var err error
	if add {
		err = n.kubeClient().AnnotatePodIP(ctx, ns, name, ip)
	} else {
		err = n.kubeClient().ClearPodIP(ctx, ns, name, ip)
	}
	if err != nil {
		n.log.Warn("could not update the pod-ips annotation", "pod", ns+"/"+name, "ip", ip, "add", add, "err", err)
	}
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
