package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/ipamd"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
	"github.com/vpc-cni/vpc-cni/pkg/poll"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeadmin"
	"github.com/vpc-cni/vpc-cni/pkg/testutil/kubeenv"
)

// TestKubePodShowsDeletingBranchPod (Kubernetes tier): a branch pod kept
// by a finalizer after its deletion stays in the node's pod cache with its
// pod-eni annotation; ipamd's PodInfo marks it Deleting, so a branch ADD
// for a new pod of that name does not take its annotation for its own.
func TestKubePodShowsDeletingBranchPod(t *testing.T) {
	kenv := kubeenv.Start(t) // skips without the Kubernetes tier
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := kubeadmin.Client(ctx, t, kenv, filepath.Join("..", ".."))
	const node, ann = "node-1", `[{"eniId":"eni-branch1","ifAddress":"02:00:00:aa:bb:01","privateIp":"10.0.0.77","vlanID":3,"subnetCidr":"10.0.0.0/20"}]`
	if err := admin.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}); err != nil {
		t.Fatal(err)
	}
	c, err := k8s.New(k8s.Config{RESTConfig: kenv.Config, NodeName: node, Features: k8s.Features{PodENI: true},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := c.Start(cctx); err != nil {
		t.Fatal(err)
	}
	k := kube{c}

	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-0", Finalizers: []string{"test.vpc-cni/keep"},
			Annotations: map[string]string{ipamd.PodENIAnnotation: ann}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{ipamd.PodENIResource: resource.MustParse("1")}}}}},
	}
	if err := admin.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // let the API server drop it
		_ = admin.Patch(context.Background(), pod, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`)))
	})
	if err := admin.Delete(ctx, pod); err != nil {
		t.Fatal(err)
	}
	var info ipamd.PodInfo
	err = poll.Until(ctx, 30*time.Second, func() error {
		if info, err = k.Pod(ctx, "default", "web-0"); err != nil {
			return err
		}
		if !info.Deleting {
			return errors.New("not marked deleting")
		}
		return nil
	})
	if err != nil || !info.Found || !info.WantsBranchENI || info.BranchAnnotation != ann {
		t.Fatalf("PodInfo of the deleting pod: %+v %v", info, err)
	}
}

// TestKubePodShowsMirrorOf (Kubernetes tier): a static pod's mirror
// carries the static pod's UID (the one the runtime passes as
// K8S_POD_UID) in kubernetes.io/config.mirror; PodInfo.MirrorOf holds it,
// so a branch-aware ADD knows the pod by the runtime's UID.
func TestKubePodShowsMirrorOf(t *testing.T) {
	kenv := kubeenv.Start(t) // skips without the Kubernetes tier
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := kubeadmin.Client(ctx, t, kenv, filepath.Join("..", ".."))
	const node = "node-1"
	if err := admin.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: node}}); err != nil {
		t.Fatal(err)
	}
	c, err := k8s.New(k8s.Config{RESTConfig: kenv.Config, NodeName: node, Features: k8s.Features{PodENI: true},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	if err := c.Start(cctx); err != nil {
		t.Fatal(err)
	}
	mirror := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "static-web-" + node,
			Annotations: map[string]string{mirrorAnnotation: "0123456789abcdef0123456789abcdef"}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
	}
	if err := admin.Create(ctx, mirror); err != nil {
		t.Fatal(err)
	}
	var info ipamd.PodInfo
	err = poll.Until(ctx, 30*time.Second, func() error {
		if info, err = (kube{c}).Pod(ctx, "default", mirror.Name); err != nil {
			return err
		}
		if !info.Found {
			return errors.New("not in the cache yet")
		}
		return nil
	})
	if err != nil || info.MirrorOf != "0123456789abcdef0123456789abcdef" || info.UID != string(mirror.UID) {
		t.Fatalf("PodInfo of a mirror pod: %+v %v", info, err)
	}
}
