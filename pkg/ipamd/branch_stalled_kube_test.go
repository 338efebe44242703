package ipamd

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestADDsWhileThePodWatchStalls (Kubernetes tier): on a node with
// ENABLE_POD_ENI the node's pod watch stalls for as long as the test runs.
// A regular pod created meanwhile, which the cache never shows, gets a pool
// address; a branch pod deleted and created again under its name (the
// cache still showing the first, with VLAN 3) gets its own branch ENI,
// VLAN 4. Each ADD carries the pod's UID and is answered from the API
// server at once. Before, both waited for the cache until their deadline
// and failed: while a watch stalled, every new pod of the node failed.
func TestADDsWhileThePodWatchStalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g := startGatedNode(ctx, t)
	admin, gate, kube, h, node := g.admin, g.gate, g.kube, g.h, gatedNodeName

	branch := branchAnnotationJSON
	newPod := func(name, ann string) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
		}
		if ann != "" {
			p.Annotations = map[string]string{PodENIAnnotation: ann}
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{PodENIResource: resource.MustParse("1")}
		}
		return p
	}
	first := newPod("web-0", branch("10.0.0.77", "3"))
	if err := admin.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the node's cache to show the first pod", func() bool {
		p, err := kube.Pod(ctx, "default", "web-0")
		return err == nil && p.UID == string(first.UID)
	})

	gate.pause()
	if err := admin.Delete(ctx, first, client.GracePeriodSeconds(0)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the first pod gone from the API server", func() bool {
		return apierrors.IsNotFound(admin.Get(ctx, client.ObjectKeyFromObject(first), &corev1.Pod{}))
	})
	second := newPod("web-0", branch("10.0.0.78", "4"))
	regular := newPod("job-0", "")
	for _, p := range []*corev1.Pod{second, regular} {
		if err := admin.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if p, err := kube.Pod(ctx, "default", "web-0"); err != nil || p.UID != string(first.UID) {
		t.Fatalf("the stalled cache shows %+v (err %v); the test needs the first pod", p, err)
	}
	if p, err := kube.Pod(ctx, "default", "job-0"); err != nil || p.Found {
		t.Fatalf("the stalled cache shows %+v (err %v); the test needs no job-0", p, err)
	}

	add := func(pod *corev1.Pod) (*rpc.AddNetworkReply, error) {
		actx, cancel := context.WithTimeout(metadata.NewIncomingContext(ctx, metadata.Pairs(hostcontract.PodUIDMetadata, string(pod.UID))), 20*time.Second)
		defer cancel()
		return h.srv.AddNetwork(actx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "sandbox-" + pod.Name, IfName: "eth0",
			K8SPodNamespace: pod.Namespace, K8SPodName: pod.Name})
	}
	if r, err := add(regular); err != nil || len(r.IpAllocationMetadata) != 1 || r.IpAllocationMetadata[0].Ipv4Addr == "" || r.PodVlanId != 0 {
		t.Errorf("ADD of a regular pod the stalled cache does not show: reply %v, err %v; want a pool address", r, err)
	}
	r, err := add(second)
	if err != nil {
		t.Fatalf("ADD of the recreated branch pod: %v", err)
	}
	if md := r.IpAllocationMetadata[0]; r.PodVlanId != 4 || md.Ipv4Addr != "10.0.0.78" {
		t.Errorf("the recreated pod was wired to VLAN %d, address %s; want its own branch ENI, VLAN 4, 10.0.0.78", r.PodVlanId, md.Ipv4Addr)
	}
}
