package ipamd

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vpc-cni/vpc-cni/rpc"
)

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// lines returns the JSON log records whose message starts with prefix.
func (s *syncBuffer) lines(t *testing.T, prefix string) []map[string]any {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if msg, _ := m["msg"].(string); strings.HasPrefix(msg, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// TestOneLogLinePerRequest: each AddNetwork and DelNetwork writes one line,
// DEBUG on success and INFO on failure, naming pod, key, address and
// duration; at INFO level a successful request writes nothing.
func TestOneLogLinePerRequest(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.settle()
	var buf syncBuffer
	level := new(slog.LevelVar)
	level.Set(slog.LevelDebug)
	h.n.log = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: level}))
	ctx := context.Background()
	add := &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "c1", IfName: "eth0", K8SPodNamespace: "default", K8SPodName: "web"}
	r, err := h.srv.AddNetwork(ctx, add)
	if err != nil {
		t.Fatal(err)
	}
	ip := r.IpAllocationMetadata[0].Ipv4Addr
	if _, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", IfName: "eth0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: "c1", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "web"}); err != nil {
		t.Fatal(err)
	}
	adds, dels := buf.lines(t, "AddNetwork"), buf.lines(t, "DelNetwork")
	if len(adds) != 2 || len(dels) != 1 {
		t.Fatalf("%d AddNetwork and %d DelNetwork lines, want 2 and 1", len(adds), len(dels))
	}
	for _, tc := range []struct {
		rec   map[string]any
		level string
		want  map[string]string
	}{
		{adds[0], "DEBUG", map[string]string{"pod": "default/web", "key": "aws-cni/c1/eth0", "ip": ip}},
		{adds[1], "INFO", map[string]string{"cause": "request lacks ContainerID"}},
		{dels[0], "DEBUG", map[string]string{"pod": "default/web", "key": "aws-cni/c1/eth0", "ip": ip}},
	} {
		if tc.rec["level"] != tc.level {
			t.Errorf("%v: level %v, want %s", tc.rec["msg"], tc.rec["level"], tc.level)
		}
		for k, v := range tc.want {
			if tc.rec[k] != v {
				t.Errorf("%v: %s=%v, want %q", tc.rec["msg"], k, tc.rec[k], v)
			}
		}
		if _, ok := tc.rec["duration"]; !ok {
			t.Errorf("%v: no duration", tc.rec["msg"])
		}
	}

	level.Set(slog.LevelInfo)
	before := len(buf.lines(t, ""))
	add.ContainerId = "c2"
	if _, err := h.srv.AddNetwork(ctx, add); err != nil {
		t.Fatal(err)
	}
	if after := len(buf.lines(t, "")); after != before {
		t.Errorf("a successful ADD at INFO level wrote %d lines", after-before)
	}
}

// TestOverlongFieldsRefused: an ADD or DEL whose key fields or pod names
// exceed their limit gets InvalidArgument naming the field and the limit,
// and nothing is assigned or released; fields at the limit are served.
func TestOverlongFieldsRefused(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	h.settle()
	ctx := context.Background()
	long := strings.Repeat("x", MaxKeyFieldLen+1)
	longName := strings.Repeat("n", MaxPodNameLen+1)
	base := func() *rpc.AddNetworkRequest {
		return &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "c-long", IfName: "eth0", K8SPodNamespace: "default", K8SPodName: "p"}
	}
	for _, tc := range []struct {
		field, limit string
		set          func(*rpc.AddNetworkRequest)
	}{
		{"ContainerID", "256", func(r *rpc.AddNetworkRequest) { r.ContainerId = long }},
		{"NetworkName", "256", func(r *rpc.AddNetworkRequest) { r.NetworkName = long }},
		{"IfName", "256", func(r *rpc.AddNetworkRequest) { r.IfName = long }},
		{"K8S_POD_NAME", "253", func(r *rpc.AddNetworkRequest) { r.K8SPodName = longName }},
	} {
		req := base()
		tc.set(req)
		_, err := h.srv.AddNetwork(ctx, req)
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.limit) {
			t.Errorf("ADD with an over-long %s: %v, want InvalidArgument naming it and %s", tc.field, err, tc.limit)
		}
		if h.holds(key(req.NetworkName, req.ContainerId, req.IfName)) || h.podsHeld() != 0 {
			t.Errorf("ADD with an over-long %s was assigned an address", tc.field)
		}
	}
	// At the limit: served, and released by a DEL at the limit.
	atLimit := strings.Repeat("y", MaxKeyFieldLen)
	r, err := h.srv.AddNetwork(ctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: atLimit, IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "p"})
	if err != nil || !r.Success {
		t.Fatalf("ADD with a %d-byte ContainerID: %v %v", MaxKeyFieldLen, r, err)
	}
	// A DEL of that pod with an over-long field is refused and releases nothing.
	for _, del := range []*rpc.DelNetworkRequest{
		{NetworkName: "aws-cni", ContainerId: atLimit, IfName: "eth0", K8SPodNamespace: "default", K8SPodName: longName},
		{NetworkName: "aws-cni", ContainerId: atLimit + "z", IfName: "eth0", K8SPodNamespace: "default", K8SPodName: "p"},
	} {
		if _, err := h.srv.DelNetwork(ctx, del); status.Code(err) != codes.InvalidArgument {
			t.Errorf("DEL with an over-long field: %v, want InvalidArgument", err)
		}
	}
	if !h.holds(key("aws-cni", atLimit, "eth0")) {
		t.Error("a refused DEL released the pod's address")
	}
	d, err := h.srv.DelNetwork(ctx, &rpc.DelNetworkRequest{NetworkName: "aws-cni", ContainerId: atLimit, IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "p"})
	if err != nil || !d.Success || h.holds(key("aws-cni", atLimit, "eth0")) {
		t.Errorf("DEL at the limit: %v %v", d, err)
	}
}
