package ipamd

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// watchGate holds back what the API server streams to a client's watches
// while paused: the client's caches then lag, as they do when a watch
// stalls or reconnects.
type watchGate struct {
	mu     sync.Mutex
	paused chan struct{} // nil: flowing; else closed on resume
}

func (g *watchGate) pause() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused == nil {
		g.paused = make(chan struct{})
	}
}

func (g *watchGate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused != nil {
		close(g.paused)
		g.paused = nil
	}
}

func (g *watchGate) wait(ctx context.Context) error {
	g.mu.Lock()
	ch := g.paused
	g.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *watchGate) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := rt.RoundTrip(req)
		if err == nil && req.URL.Query().Get("watch") != "" {
			resp.Body = g.hold(req.Context(), resp.Body)
		}
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// hold passes body on through a pipe; what arrives while the gate is
// paused is passed on only after it resumes (the gate is checked after
// each read, so a read already waiting when it pauses is held too).
func (g *watchGate) hold(ctx context.Context, body io.ReadCloser) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := body.Read(buf)
			if werr := g.wait(ctx); werr != nil {
				err = werr
			}
			if n > 0 {
				if _, werr := pw.Write(buf[:n]); werr != nil {
					err = werr
				}
			}
			if err != nil {
				_ = body.Close()
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}

// cachedKube is the node as a real Kubernetes client's caches show it (the
// pods), the rest as fakeKube; Pod reads the cache as cmd/ipamd's adapter
// does, and counts the reads.
type cachedKube struct {
	*fakeKube
	c     *k8s.Client
	reads atomic.Int64
}

func (k *cachedKube) Pod(ctx context.Context, namespace, name string) (PodInfo, error) {
	k.reads.Add(1)
	return testPodInfo(k.c.Pod(ctx, namespace, name))
}

// PodLive reads the API server as cmd/ipamd's adapter does.
func (k *cachedKube) PodLive(ctx context.Context, namespace, name string) (PodInfo, error) {
	return testPodInfo(k.c.PodLive(ctx, namespace, name))
}

func testPodInfo(p *corev1.Pod, err error) (PodInfo, error) {
	if apierrors.IsNotFound(err) {
		return PodInfo{}, nil
	}
	if err != nil {
		return PodInfo{}, err
	}
	info := PodInfo{Found: true, UID: string(p.UID), BranchAnnotation: p.Annotations[PodENIAnnotation], Deleting: p.DeletionTimestamp != nil}
	for res := range p.Spec.Containers[0].Resources.Limits {
		info.WantsBranchENI = info.WantsBranchENI || strings.HasPrefix(string(res), PodENIResource)
	}
	return info, nil
}

// TestBranchADDOfARecreatedPod (Kubernetes tier): a branch pod web-0 is
// deleted and created again under its name (a StatefulSet's, or a force
// delete), each with its own branch ENI; the node's pod cache lags (its
// watch stalls), so it still shows the first pod, not being deleted,
// with the first branch ENI. The ADD for the new pod's sandbox carries the
// pod's UID (from the plugin, in gRPC metadata): ipamd waits for its cache
// to show that pod and wires the new pod to its own branch ENI. Before, it
// answered at once with the first pod's VLAN and address, whose branch
// ENI the resource controller deletes.
func TestBranchADDOfARecreatedPod(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	g := startGatedNode(ctx, t)
	admin, gate, kube, h := g.admin, g.gate, g.kube, g.h

	first := g.firstPodGoneWhileStalled(ctx, t)
	second := nodePod("web-0", branchAnnotationJSON("10.0.0.78", "4"))
	if err := admin.Create(ctx, second); err != nil {
		t.Fatal(err)
	}
	if p, err := kube.Pod(ctx, "default", "web-0"); err != nil || p.UID != string(first.UID) || p.Deleting {
		t.Fatalf("the stalled cache shows %+v (err %v); the test needs the first pod, not being deleted", p, err)
	}

	type result struct {
		r   *rpc.AddNetworkReply
		err error
	}
	done := make(chan result, 1)
	reads := kube.reads.Load()
	go func() {
		actx, cancel := context.WithTimeout(metadata.NewIncomingContext(ctx, metadata.Pairs(hostcontract.PodUIDMetadata, string(second.UID))), 20*time.Second)
		defer cancel()
		r, err := h.srv.AddNetwork(actx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "sandbox-2", IfName: "eth0",
			K8SPodNamespace: "default", K8SPodName: "web-0"})
		done <- result{r, err}
	}()
	// The watch resumes once the ADD is seen waiting on the cache (a
	// second read), or at once if it answered.
	var res result
	answered := false
	waitFor(t, 20*time.Second, "the ADD to answer or to wait on the pod cache", func() bool {
		select {
		case res = <-done:
			answered = true
			return true
		default:
			return kube.reads.Load() >= reads+2
		}
	})
	gate.resume()
	if !answered {
		res = <-done
	}
	if res.err != nil {
		t.Fatalf("ADD of the new pod: %v", res.err)
	}
	if md := res.r.IpAllocationMetadata[0]; res.r.PodVlanId != 4 || md.Ipv4Addr != "10.0.0.78" {
		t.Errorf("the new pod was wired to VLAN %d, address %s; want its own branch ENI, VLAN 4, 10.0.0.78", res.r.PodVlanId, md.Ipv4Addr)
	}
}

// TestBranchADDRefusesAnEarlierPodsBranch: without the Kubernetes tier,
// the same window: the node's cache shows an earlier pod of the name (UID
// u1, VLAN 3), the ADD is for the pod of UID u2. Until the cache shows u2
// the ADD wires nothing; at its deadline it fails naming the UID it waited
// for. An ADD without a UID (upstream's plugin) is answered from the cache
// as before.
func TestBranchADDRefusesAnEarlierPodsBranch(t *testing.T) {
	k := &fakeKube{schedulable: true, maxPods: 29, pods: map[string]PodInfo{
		"default/web-0": {Found: true, UID: "u1", WantsBranchENI: true, BranchAnnotation: branchAnnotation},
	}}
	h := newHarness(t, harnessOpts{scenario: withTrunk, kube: k, cfg: func(c *config.Config) { c.EnablePodENI = true }})
	h.settle()
	req := &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "sandbox-2", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "web-0"}
	ctx, cancel := context.WithTimeout(metadata.NewIncomingContext(context.Background(), metadata.Pairs(hostcontract.PodUIDMetadata, "u2")), 300*time.Millisecond)
	defer cancel()
	r, err := h.srv.AddNetwork(ctx, req)
	if err == nil || !strings.Contains(err.Error(), "u2") {
		t.Errorf("ADD for pod u2 while the cache shows u1: reply %v, err %v; want no wiring and an error naming u2", r, err)
	}
	r, err = h.srv.AddNetwork(context.Background(), req)
	if err != nil || r.PodVlanId != 3 {
		t.Errorf("ADD without a UID: reply %v, err %v; want the cached pod's VLAN 3", r, err)
	}
	// A static pod: the runtime knows it by its own UID, the API server
	// by its mirror's, which names the static pod's in an annotation.
	k.mu.Lock()
	k.pods["default/static-0"] = PodInfo{Found: true, UID: "mirror-uid", MirrorOf: "static-uid"}
	k.mu.Unlock()
	// A wait for a UID the cache never shows would fail at the deadline, so
	// a generous one proves the same on a loaded machine.
	sctx, scancel := context.WithTimeout(metadata.NewIncomingContext(context.Background(), metadata.Pairs(hostcontract.PodUIDMetadata, "static-uid")), 10*time.Second)
	defer scancel()
	r, err = h.srv.AddNetwork(sctx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "static-sandbox", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "static-0"})
	if err != nil || len(r.IpAllocationMetadata) != 1 || r.IpAllocationMetadata[0].Ipv4Addr == "" || r.PodVlanId != 0 {
		t.Errorf("ADD of a static pod (by its own UID, the cache showing its mirror): reply %v, err %v; want a pool address", r, err)
	}
}
