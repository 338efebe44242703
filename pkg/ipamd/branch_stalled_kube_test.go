package ipamd

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"

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
	admin, kube, h := g.admin, g.kube, g.h

	first := g.firstPodGoneWhileStalled(ctx, t)
	second := nodePod("web-0", branchAnnotationJSON("10.0.0.78", "4"))
	regular := nodePod("job-0", "")
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
