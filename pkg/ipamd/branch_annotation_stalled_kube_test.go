package ipamd

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestBranchAnnotationWrittenWhileThePodWatchStalls (Kubernetes tier): a
// branch pod the node's cache shows without its branch annotation; the
// pod watch then stalls and the VPC resource controller writes the
// annotation. The ADD gets the branch ENI the annotation names, VLAN 5,
// within its deadline. Before, it waited for the cache alone and failed
// at its deadline.
func TestBranchAnnotationWrittenWhileThePodWatchStalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g := startGatedNode(ctx, t)
	admin, gate, kube, h, node := g.admin, g.gate, g.kube, g.h, gatedNodeName

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0"},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{PodENIResource: resource.MustParse("1")}}}}},
	}
	if err := admin.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the node's cache to show the pod", func() bool {
		p, err := kube.Pod(ctx, "default", "web-0")
		return err == nil && p.UID == string(pod.UID) && p.WantsBranchENI
	})

	gate.pause()
	patch := client.MergeFrom(pod.DeepCopy())
	pod.Annotations = map[string]string{PodENIAnnotation: `[{"eniId":"eni-branch5","ifAddress":"02:00:00:aa:bb:05","privateIp":"10.0.0.79",` +
		`"ipv6Addr":"","vlanID":5,"subnetCidr":"10.0.0.0/20","subnetV6Cidr":""}]`}
	if err := admin.Patch(ctx, pod, patch); err != nil {
		t.Fatal(err)
	}
	if p, err := kube.Pod(ctx, "default", "web-0"); err != nil || p.BranchAnnotation != "" {
		t.Fatalf("the stalled cache shows %+v (err %v); the test needs the pod without its annotation", p, err)
	}

	actx, acancel := context.WithTimeout(metadata.NewIncomingContext(ctx, metadata.Pairs(hostcontract.PodUIDMetadata, string(pod.UID))), 15*time.Second)
	defer acancel()
	r, err := h.srv.AddNetwork(actx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "sandbox-web-0", IfName: "eth0",
		K8SPodNamespace: pod.Namespace, K8SPodName: pod.Name})
	if err != nil {
		t.Fatalf("ADD of a branch pod annotated while the pod watch stalls: %v", err)
	}
	if md := r.IpAllocationMetadata[0]; r.PodVlanId != 5 || md.Ipv4Addr != "10.0.0.79" {
		t.Errorf("the pod was wired to VLAN %d, address %s; want the annotated branch ENI, VLAN 5, 10.0.0.79", r.PodVlanId, md.Ipv4Addr)
	}
}
