package resourcecontroller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/vpcsim/simtest"
)

// TestKubeAnnotationAppliedButAnswerLost: the API server applies the pod's
// annotation patch but the controller hears an error (a timeout, a reset
// connection). The annotation must not end up naming a branch ENI that the
// controller deleted: after the retry, the annotated ENI exists and is
// associated with the trunk on the annotated VLAN.
func TestKubeAnnotationAppliedButAnswerLost(t *testing.T) {
	annotateAnswerLost(t, true, false)
}

// TestKubeAnnotationAnswerLostAndUnconfirmed: as above, but the read that
// would tell whether the patch was applied fails too (the API server is
// unreachable for a moment), whether or not the patch was applied. The
// branch must be neither deleted under an annotation nor left unannotated:
// after the retries the pod is annotated with a live, associated branch.
func TestKubeAnnotationAnswerLostAndUnconfirmed(t *testing.T) {
	for _, applied := range []bool{true, false} {
		t.Run(fmt.Sprint("applied=", applied), func(t *testing.T) { annotateAnswerLost(t, applied, true) })
	}
}

type flakyReader struct {
	client.Reader
	fail *atomic.Bool
}

func (r flakyReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if r.fail.CompareAndSwap(true, false) {
		return errors.New("dial tcp: connection refused")
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

func annotateAnswerLost(t *testing.T, applied, confirmFails bool) {
	w := newWorld(t)
	env, admin := kubeAdmin(t)
	ctx := context.Background()
	ns := fmt.Sprintf("annotate-lost-%d", harnesses.Add(1))
	node := "rc-" + ns
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = admin.Delete(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	})

	scheme, err := NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	direct, err := client.NewWithWatch(env.Config, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	var lost atomic.Int32
	var failGet atomic.Bool
	c, err := New(Config{ClusterName: "test", Log: slog.New(slog.NewTextHandler(testWriter{t}, nil))}, w.ec2)
	if err != nil {
		t.Fatal(err)
	}
	c.c = interceptor.NewClient(direct, interceptor.Funcs{
		Patch: func(ctx context.Context, cl client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			_, pod := obj.(*corev1.Pod)
			first := pod && lost.Add(1) == 1
			if !first || applied {
				if err := cl.Patch(ctx, obj, patch, opts...); err != nil {
					return err
				}
			}
			if first {
				failGet.Store(confirmFails)
				return errors.New("http2: client connection lost") // applied or not: the answer is lost
			}
			return nil
		},
	})
	c.api = flakyReader{Reader: direct, fail: &failGet}
	c.rec = recorder{c: c.c, log: c.cfg.Log}

	trunk, err := w.ec2.CreateTrunkENI(ctx, awsutils.TrunkRequest{InstanceID: inst1, SubnetID: simtest.NodeSubnetID, SecurityGroups: []string{sgNode}, ClusterName: "test", DeviceIndex: 2})
	if err != nil {
		t.Fatal(err)
	}
	tr := newTrunk()
	tr.node, tr.instanceID, tr.trunkID = node, inst1, trunk.ID
	tr.subnetID, tr.subnetCIDR, tr.groups, tr.limit = simtest.NodeSubnetID, "10.0.0.0/16", []string{sgNode}, 9
	c.reg.put(tr)

	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "lost", Namespace: ns},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "none",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{PodENIResource: resourceOne()}, Limits: corev1.ResourceList{PodENIResource: resourceOne()}}}}}}
	if err := admin.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	req := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: "lost"}}
	for i := 0; i < 5; i++ { // the first answer is lost; the requeues follow
		if _, err := c.reconcilePod(ctx, req); err == nil {
			break
		}
	}
	c.deleteCooled(ctx, time.Now().Add(24*time.Hour)) // whatever the controller queued for deletion, deleted now

	var got corev1.Pod
	if err := admin.Get(ctx, req.NamespacedName, &got); err != nil {
		t.Fatal(err)
	}
	bs, err := DecodeAnnotation(got.Annotations[PodENIAnnotation])
	if err != nil || len(bs) != 1 {
		t.Fatalf("annotation %q: %v", got.Annotations[PodENIAnnotation], err)
	}
	as, err := w.ec2.TrunkAssociations(ctx, trunk.ID)
	if err != nil {
		t.Fatal(err)
	}
	ids := branchIDs(w.branches())
	if !slices.Equal(ids, []string{bs[0].ENIID}) || len(as) != 1 || as[0].BranchID != bs[0].ENIID || as[0].VLAN != bs[0].VlanID {
		t.Fatalf("pod annotated with %s on VLAN %d; EC2 has branches %v, associations %+v", bs[0].ENIID, bs[0].VlanID, ids, as)
	}
}
