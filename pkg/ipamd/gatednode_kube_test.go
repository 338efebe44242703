package ipamd

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeadmin"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
)

// gatedNodeName is the Node a gatedNode's ipamd runs for.
const gatedNodeName = "node-1"

// gatedNode is the Kubernetes tier's world for branch ADDs whose pod cache
// lags: a real API server with the Node, an admin client, and an
// ENABLE_POD_ENI harness (trunk attached) whose node client's pod watch
// the test stalls with gate.pause.
type gatedNode struct {
	admin client.Client
	gate  *watchGate
	kube  *cachedKube
	h     *harness
}

// startGatedNode builds a gatedNode, or skips the test without the
// Kubernetes tier. The node client stops, and a stalled watch resumes,
// when the test ends.
func startGatedNode(ctx context.Context, t *testing.T) *gatedNode {
	t.Helper()
	kenv := kubeenv.Start(t)
	admin := kubeadmin.Client(ctx, t, kenv, filepath.Join("..", ".."))
	if err := admin.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: gatedNodeName}}); err != nil {
		t.Fatal(err)
	}
	gate := &watchGate{}
	rc := rest.CopyConfig(kenv.Config)
	rc.WrapTransport = gate.wrap
	c, err := k8s.New(k8s.Config{RESTConfig: rc, NodeName: gatedNodeName, Features: k8s.Features{PodENI: true},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	t.Cleanup(gate.resume)
	if err := c.Start(cctx); err != nil {
		t.Fatal(err)
	}
	kube := &cachedKube{fakeKube: &fakeKube{schedulable: true, maxPods: 29}, c: c}
	h := newHarness(t, harnessOpts{scenario: withTrunk, kube: kube, cfg: func(c *config.Config) { c.EnablePodENI = true }})
	h.settle()
	return &gatedNode{admin: admin, gate: gate, kube: kube, h: h}
}

// branchAnnotationJSON is a vpc.amazonaws.com/pod-eni annotation naming
// one branch ENI with address ip on VLAN vlan (one digit).
func branchAnnotationJSON(ip, vlan string) string {
	return `[{"eniId":"eni-branch` + vlan + `","ifAddress":"02:00:00:aa:bb:0` + vlan + `","privateIp":"` + ip +
		`","ipv6Addr":"","vlanID":` + vlan + `,"subnetCidr":"10.0.0.0/20","subnetV6Cidr":""}]`
}

// nodePod is a pod of the gated node; with ann, a branch pod (it asks for
// vpc.amazonaws.com/pod-eni) carrying ann as its branch annotation.
func nodePod(name, ann string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
		Spec:       corev1.PodSpec{NodeName: gatedNodeName, Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
	}
	if ann != "" {
		p.Annotations = map[string]string{PodENIAnnotation: ann}
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{PodENIResource: resource.MustParse("1")}
	}
	return p
}

// firstPodGoneWhileStalled creates branch pod web-0 (VLAN 3, 10.0.0.77),
// waits for the node's cache to show it, stalls the pod watch and deletes
// the pod from the API server: the cache still shows it, not being
// deleted. It returns that first pod.
func (g *gatedNode) firstPodGoneWhileStalled(ctx context.Context, t *testing.T) *corev1.Pod {
	t.Helper()
	first := nodePod("web-0", branchAnnotationJSON("10.0.0.77", "3"))
	if err := g.admin.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the node's cache to show the first pod", func() bool {
		p, err := g.kube.Pod(ctx, "default", "web-0")
		return err == nil && p.UID == string(first.UID)
	})
	g.gate.pause()
	if err := g.admin.Delete(ctx, first, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the first pod gone from the API server", func() bool {
		return apierrors.IsNotFound(g.admin.Get(ctx, client.ObjectKeyFromObject(first), &corev1.Pod{}))
	})
	return first
}
