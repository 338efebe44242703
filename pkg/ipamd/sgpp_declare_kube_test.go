package ipamd

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeadmin"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
)

// featureKube declares CNINode features through the real node client, as
// cmd/ipamd's adapter does.
type featureKube struct {
	*fakeKube
	c *k8s.Client
}

func (k *featureKube) DeclareFeature(ctx context.Context, name, value string) error {
	return k.c.AddCNINodeFeature(ctx, name, value)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestKubeSGPPDeclaredOnceWhileNoTrunk (Kubernetes tier): ENABLE_POD_ENI
// on a node that can trunk, no trunk ENI attached yet. The pool cycle asks
// for one each tick while none is there, but the CNINode is written once:
// after the first cycle declares SecurityGroupsForPods, 30 more cycles
// leave the object's resourceVersion and its features as they were, and
// the API server receives no write to it.
func TestKubeSGPPDeclaredOnceWhileNoTrunk(t *testing.T) {
	ctx := context.Background()
	kenv := kubeenv.Start(t)
	admin := kubeadmin.Client(ctx, t, kenv, filepath.Join("..", ".."))
	const node = "node-1"
	if err := admin.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Create(ctx, &k8s.CNINode{ObjectMeta: metav1.ObjectMeta{Name: node}}); err != nil {
		t.Fatal(err)
	}
	// Writes to the CNINode as the API server receives them: a no-op
	// merge patch leaves the resourceVersion alone, so it is counted at
	// the API server's door (an audit of the requests), not on the object.
	var patches atomic.Int64
	rc := rest.CopyConfig(kenv.Config)
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.Method != http.MethodGet && strings.Contains(r.URL.Path, "/cninodes") {
				patches.Add(1)
			}
			return rt.RoundTrip(r)
		})
	}
	c, err := k8s.New(k8s.Config{RESTConfig: rc, NodeName: node, Features: k8s.Features{PodENI: true},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	if err := c.Start(cctx); err != nil {
		t.Fatal(err)
	}
	kube := &featureKube{fakeKube: &fakeKube{schedulable: true, maxPods: 29}, c: c}
	h := newHarness(t, harnessOpts{instanceType: "m5.large", kube: kube, cfg: func(c *config.Config) { c.EnablePodENI = true }})
	if _, ok := h.n.branch.trunkENI(); ok {
		t.Fatal("the node has a trunk ENI; the test needs none")
	}
	read := func() *k8s.CNINode {
		t.Helper()
		var cn k8s.CNINode
		if err := admin.Get(ctx, client.ObjectKey{Name: node}, &cn); err != nil {
			t.Fatal(err)
		}
		return &cn
	}
	declared := func(cn *k8s.CNINode) bool {
		for _, f := range cn.Spec.Features {
			if f.Name == featureSGPP {
				return true
			}
		}
		return false
	}
	h.n.PoolCycle(ctx)
	waitFor(t, 10*time.Second, "SecurityGroupsForPods declared on the CNINode", func() bool { return declared(read()) })
	first, before := read(), patches.Load()
	if before == 0 {
		t.Fatal("the declaration reached the API server through no counted request")
	}
	for range 30 {
		h.n.PoolCycle(ctx)
	}
	if _, ok := h.n.branch.trunkENI(); ok {
		t.Fatal("a trunk ENI appeared; the test needs none")
	}
	last := read()
	if got := patches.Load() - before; got != 0 {
		t.Errorf("%d writes to the CNINode over 30 pool cycles without a trunk after the declaration, want none", got)
	}
	if last.ResourceVersion != first.ResourceVersion || len(last.Spec.Features) != len(first.Spec.Features) {
		t.Errorf("CNINode written again by 30 pool cycles without a trunk: resourceVersion %s → %s, features %v → %v",
			first.ResourceVersion, last.ResourceVersion, first.Spec.Features, last.Spec.Features)
	}
}
