package ipamd

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/trailer"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// What the gRPC door checks before a request touches the datastore, and
// the one log line per request (docs/compatibility.md, "gRPC between
// plugin and ipamd").

// MaxPodNameLen is Kubernetes' limit on pod names and namespaces; longer
// ones would be written into the checkpoint on every ADD and DEL.
const MaxPodNameLen = 253

// MaxKeyFieldLen bounds ContainerID, NetworkName and IfName, which form the
// checkpoint's key of every pod. Runtimes send far less (a container id is
// 64 hex characters, an interface name at most 15 bytes); without a bound a
// runtime could have ipamd write ~128 KiB keys per pod.
const MaxKeyFieldLen = 256

// CauseTrailer carries the reason of a Success=false reply: the reply
// message has no field for it, and upstream's clients ignore trailers.
const CauseTrailer = trailer.Cause

// checkLengths refuses key fields, pod names and namespaces longer than
// any runtime or Kubernetes object has, naming the field and the limit,
// before anything is looked up or assigned.
func checkLengths(req podRequest) error {
	for _, f := range []struct {
		field, v string
		limit    int
	}{
		{"K8S_POD_NAMESPACE", req.GetK8SPodNamespace(), MaxPodNameLen},
		{"K8S_POD_NAME", req.GetK8SPodName(), MaxPodNameLen},
		{"ContainerID", req.GetContainerId(), MaxKeyFieldLen},
		{"NetworkName", req.GetNetworkName(), MaxKeyFieldLen},
		{"IfName", req.GetIfName(), MaxKeyFieldLen},
	} {
		if len(f.v) > f.limit {
			return status.Errorf(codes.InvalidArgument, "%s is %d bytes long; the limit is %d", f.field, len(f.v), f.limit)
		}
	}
	return nil
}

// emptyFields names the empty key fields of a request.
func emptyFields(containerID, ifName, networkName string) []string {
	var out []string
	for _, f := range [][2]string{{"ContainerID", containerID}, {"IfName", ifName}, {"NetworkName", networkName}} {
		if f[1] == "" {
			out = append(out, f[0])
		}
	}
	return out
}

// addRefusal is why an ADD is answered Success=false as upstream does, or
// "" when it is served.
func addRefusal(req *rpc.AddNetworkRequest, multiNIC bool) string {
	if e := emptyFields(req.GetContainerId(), req.GetIfName(), req.GetNetworkName()); len(e) > 0 {
		return "request lacks " + strings.Join(e, ", ")
	}
	if req.GetRequiresMultiNicAttachment() && !multiNIC {
		return "pod asks for a multi-NIC attachment but ENABLE_MULTI_NIC=false on this node"
	}
	return ""
}

// delRefusal refuses only a DEL that names nothing at all. Upstream looks
// any key up (a DEL missing some fields still matches a migrated entry by
// container id) and answers "unknown pod" for an empty one.
func delRefusal(req *rpc.DelNetworkRequest) string {
	if len(emptyFields(req.GetContainerId(), req.GetIfName(), req.GetNetworkName())) == 3 {
		return "DEL names no pod: ContainerID, IfName and NetworkName are all empty"
	}
	return ""
}

// refuse sends the cause of a Success=false reply in the trailer.
func refuse(ctx context.Context, cause string) {
	// Outside a gRPC call (direct calls in tests) there is no trailer to set.
	_ = grpc.SetTrailer(ctx, metadata.Pairs(CauseTrailer, cause))
}

// logAdd writes the request's one line: DEBUG when it succeeded, INFO
// when it did not. Attributes are built only when the line is written.
func (s *Server) logAdd(ctx context.Context, req *rpc.AddNetworkRequest, r *rpc.AddNetworkReply, cause string, err error, start time.Time) {
	outcome := ""
	switch {
	case err != nil:
		outcome = " failed"
	case !r.GetSuccess():
		outcome = " refused"
	}
	s.logRequest(ctx, "AddNetwork", req, r.GetIpAllocationMetadata(), outcome, cause, err, start)
}

// logDel is logAdd for DelNetwork; an unknown pod is a success (every
// plugin treats it so).
func (s *Server) logDel(ctx context.Context, req *rpc.DelNetworkRequest, r *rpc.DelNetworkReply, cause string, err error, start time.Time) {
	outcome := ""
	switch {
	case err != nil && status.Code(err) == codes.Unknown:
		outcome, err = ": unknown pod", nil
	case err != nil:
		outcome = " failed"
	case !r.GetSuccess():
		outcome = " refused"
	}
	s.logRequest(ctx, "DelNetwork", req, r.GetIpAllocationMetadata(), outcome, cause, err, start)
}

// podRequest is what AddNetworkRequest and DelNetworkRequest share for the
// log line.
type podRequest interface {
	GetK8SPodNamespace() string
	GetK8SPodName() string
	GetNetworkName() string
	GetContainerId() string
	GetIfName() string
}

// logRequest writes one request's line. outcome is "" for a success (logged
// at DEBUG), otherwise a suffix of op (" failed", " refused", logged at
// INFO, or ": unknown pod", a success).
func (s *Server) logRequest(ctx context.Context, op string, req podRequest, md []*rpc.IPAllocationMetadata, outcome, cause string, err error, start time.Time) {
	level := slog.LevelDebug
	if outcome == " failed" || outcome == " refused" {
		level = slog.LevelInfo
	}
	log := s.n.log
	if !log.Enabled(ctx, level) {
		return
	}
	// Room for every attribute, so that the appends below stay on the
	// stack (slog copies them into its record).
	attrs := make([]slog.Attr, 0, 5)
	attrs = append(attrs,
		slog.String("pod", req.GetK8SPodNamespace()+"/"+req.GetK8SPodName()),
		slog.String("key", key(req.GetNetworkName(), req.GetContainerId(), req.GetIfName()).String()),
		slog.Duration("duration", time.Since(start)),
	)
	if len(md) > 0 {
		attrs = append(attrs, slog.String("ip", md[0].GetIpv4Addr()+md[0].GetIpv6Addr()))
	}
	switch {
	case err != nil:
		attrs = append(attrs, slog.String("err", err.Error()))
	case outcome == " refused":
		attrs = append(attrs, slog.String("cause", cause))
	}
	log.LogAttrs(ctx, level, op+outcome, attrs...)
}
