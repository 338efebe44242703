package ipamd

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vpc-cni/vpc-cni/pkg/hostcontract"
	"github.com/vpc-cni/vpc-cni/pkg/ipamd/config"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeadmin"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
	"github.com/vpc-cni/vpc-cni/rpc"
)

// TestADDOfAPodBeingDeletedKube (Kubernetes tier): on a node with
// ENABLE_POD_ENI, a regular pod is deleted while its sandbox starts (a
// finalizer keeps it, deletionTimestamp set, as a grace period does). The
// ADD, carrying the pod's UID, gets a pool address from ipamd; before, it
// waited for the pod to stop being deleted and failed at its deadline.
func TestADDOfAPodBeingDeletedKube(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kenv := kubeenv.Start(t)
	admin := kubeadmin.Client(ctx, t, kenv, filepath.Join("..", ".."))
	const node = "node-1"
	if err := admin.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}); err != nil {
		t.Fatal(err)
	}
	c, err := k8s.New(k8s.Config{RESTConfig: kenv.Config, NodeName: node, Features: k8s.Features{PodENI: true},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := c.Start(cctx); err != nil {
		t.Fatal(err)
	}
	kube := &cachedKube{fakeKube: &fakeKube{schedulable: true, maxPods: 29}, c: c}
	h := newHarness(t, harnessOpts{scenario: withTrunk, kube: kube, cfg: func(c *config.Config) { c.EnablePodENI = true }})
	h.settle()

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "job-0", Finalizers: []string{"example.com/hold"}},
		Spec:       corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
	}
	if err := admin.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	if err := admin.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the node's cache to show the pod being deleted", func() bool {
		p, err := kube.Pod(ctx, "default", "job-0")
		return err == nil && p.UID == string(pod.UID) && p.Deleting
	})
	actx, acancel := context.WithTimeout(metadata.NewIncomingContext(ctx, metadata.Pairs(hostcontract.PodUIDMetadata, string(pod.UID))), 20*time.Second)
	defer acancel()
	r, err := h.srv.AddNetwork(actx, &rpc.AddNetworkRequest{NetworkName: "aws-cni", ContainerId: "sandbox-1", IfName: "eth0",
		K8SPodNamespace: "default", K8SPodName: "job-0"})
	if err != nil || len(r.IpAllocationMetadata) != 1 || r.IpAllocationMetadata[0].Ipv4Addr == "" || r.PodVlanId != 0 {
		t.Fatalf("ADD of a pod being deleted, by its UID: reply %v, err %v; want a pool address", r, err)
	}
}
