package resourcecontroller

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestKubeStandbyReplicaServesWebhookThenTakesOver: with leader election
// (on by default), a replica whose lease another holds serves the webhook
// (a pod matching a policy created meanwhile asks for pod-eni) and, once
// that lease is no longer renewed, takes over: the node gets its trunk and
// the pod its branch.
func TestKubeStandbyReplicaServesWebhookThenTakesOver(t *testing.T) {
	w := newWorld(t)
	env, admin := kubeAdmin(t)
	ctx := context.Background()
	scheme := runtime.NewScheme()
	if err := coordinationv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	leases, err := client.New(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	leaseNS := fmt.Sprintf("rc-lease-%d", harnesses.Add(1))
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNS}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: leaseNS}})
	})
	now := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaseName, Namespace: leaseNS},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("other-replica"), LeaseDurationSeconds: ptr.To[int32](6), AcquireTime: &now, RenewTime: &now}}
	if err := leases.Create(ctx, lease); err != nil {
		t.Fatal(err)
	}
	// The other replica renews its lease until told to stop.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var l coordinationv1.Lease
			if err := leases.Get(ctx, client.ObjectKey{Namespace: leaseNS, Name: LeaseName}, &l); err != nil {
				continue
			}
			now := metav1.NewMicroTime(time.Now())
			l.Spec.RenewTime = &now
			_ = leases.Update(ctx, &l) // a conflict: the next tick renews
		}
	}()
	stopRenewing := sync.OnceFunc(func() { close(stop); wg.Wait() })
	t.Cleanup(stopRenewing)

	h := newHarnessLeased(t, w.ec2, fastConfig(), leaseNS)
	h.addPolicy("db", map[string]string{"role": "db-client"}, sgDB)
	const node = "rc-standby"
	p, err := h.createPod("p", node, map[string]string{"role": "db-client"})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Spec.Containers[0].Resources.Limits[PodENIResource]; got.Value() != 1 {
		t.Errorf("the standby replica's webhook did not give the pod the %s limit (limits %v)", PodENIResource, p.Spec.Containers[0].Resources.Limits)
	}
	var l coordinationv1.Lease
	if err := leases.Get(ctx, client.ObjectKey{Namespace: leaseNS, Name: LeaseName}, &l); err != nil {
		t.Fatal(err)
	}
	if holder := ptr.Deref(l.Spec.HolderIdentity, ""); holder != "other-replica" {
		t.Fatalf("the lease is held by %q before the other replica stopped renewing", holder)
	}
	stopRenewing()
	h.addSGPNode(node, inst1, 9)
	if b := h.waitAnnotation("p"); len(b) != 1 {
		t.Errorf("the pod created while the replica stood by has %d branches, want 1", len(b))
	}
}
