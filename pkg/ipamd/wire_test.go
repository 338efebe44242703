package ipamd

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/rpc"
)

// The client here is built only from rpc/rpc.proto: the method names the
// proto declares and the generated message types, sent with a raw
// ClientConn.Invoke (no generated client stub, no server code).
const (
	wireAdd = "/rpc.CNIBackend/AddNetwork"
	wireDel = "/rpc.CNIBackend/DelNetwork"
)

// TestWireRepliesAsUpstreamClientExpects: requests upstream answers with a
// successful RPC carrying Success=false get the same here, with the cause
// in the trailer; a DEL of an unknown pod fails with code Unknown and the
// text upstream's plugin matches; over-long pod names are refused naming
// the field and the limit.
func TestWireRepliesAsUpstreamClientExpects(t *testing.T) {
	h := newHarness(t, harnessOpts{noInit: true})
	h.runDaemon()
	waitFor(t, 20*time.Second, "ipamd ready", h.n.Ready)
	conn := dial(t, h.cfg.SocketPath)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	for _, tc := range []struct {
		name  string
		req   *rpc.AddNetworkRequest
		cause string
	}{
		{"no ContainerID", &rpc.AddNetworkRequest{IfName: "eth0", NetworkName: "aws-cni"}, "ContainerID"},
		{"no IfName", &rpc.AddNetworkRequest{ContainerId: "c", NetworkName: "aws-cni"}, "IfName"},
		{"no NetworkName", &rpc.AddNetworkRequest{ContainerId: "c", IfName: "eth0"}, "NetworkName"},
		{"nothing", &rpc.AddNetworkRequest{}, "ContainerID, IfName, NetworkName"},
		{"multi-NIC without ENABLE_MULTI_NIC", &rpc.AddNetworkRequest{ContainerId: "c", IfName: "eth0", NetworkName: "aws-cni",
			RequiresMultiNicAttachment: true}, "ENABLE_MULTI_NIC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var reply rpc.AddNetworkReply
			var trailer metadata.MD
			if err := conn.Invoke(ctx, wireAdd, tc.req, &reply, grpc.Trailer(&trailer)); err != nil {
				t.Fatalf("RPC failed: %v; upstream answers a successful RPC", err)
			}
			if reply.Success || len(reply.IpAllocationMetadata) != 0 {
				t.Errorf("reply %v, want Success=false and no address", &reply)
			}
			if got := strings.Join(trailer.Get(CauseTrailer), ";"); !strings.Contains(got, tc.cause) {
				t.Errorf("cause trailer %q, want it to name %q", got, tc.cause)
			}
		})
	}

	var del rpc.DelNetworkReply
	err := conn.Invoke(ctx, wireDel, &rpc.DelNetworkRequest{ContainerId: "never-added", IfName: "eth0", NetworkName: "aws-cni"}, &del)
	if status.Code(err) != codes.Unknown || !strings.Contains(err.Error(), "datastore: unknown pod") {
		t.Errorf("DEL of an unknown pod: %v, want code Unknown with %q", err, "datastore: unknown pod")
	}
	var trailer metadata.MD
	if err := conn.Invoke(ctx, wireDel, &rpc.DelNetworkRequest{}, &del, grpc.Trailer(&trailer)); err != nil || del.Success {
		t.Errorf("DEL naming nothing: %v %v, want a Success=false reply", &del, err)
	} else if len(trailer.Get(CauseTrailer)) == 0 {
		t.Error("DEL naming nothing: no cause in the trailer")
	}

	long := strings.Repeat("a", MaxPodNameLen+1)
	for _, tc := range []struct {
		field   string
		ns, pod string
	}{{"K8S_POD_NAME", "default", long}, {"K8S_POD_NAMESPACE", long, "p"}} {
		var reply rpc.AddNetworkReply
		err := conn.Invoke(ctx, wireAdd, &rpc.AddNetworkRequest{ContainerId: "c-long", IfName: "eth0", NetworkName: "aws-cni",
			K8SPodNamespace: tc.ns, K8SPodName: tc.pod}, &reply)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), "253") {
			t.Errorf("ADD with a %d-byte %s: %v, want InvalidArgument naming the field and 253", len(long), tc.field, err)
		}
	}
	// 253 bytes is allowed.
	ok := strings.Repeat("b", MaxPodNameLen)
	var reply rpc.AddNetworkReply
	if err := conn.Invoke(ctx, wireAdd, &rpc.AddNetworkRequest{ContainerId: "c-253", IfName: "eth0", NetworkName: "aws-cni",
		K8SPodNamespace: ok, K8SPodName: ok}, &reply); err != nil || !reply.Success {
		t.Errorf("ADD with 253-byte names: %v %v", &reply, err)
	}
	if err := conn.Invoke(ctx, wireDel, &rpc.DelNetworkRequest{ContainerId: "c-253", IfName: "eth0", NetworkName: "aws-cni"}, &del); err != nil || !del.Success {
		t.Errorf("DEL: %v %v", &del, err)
	}
}
