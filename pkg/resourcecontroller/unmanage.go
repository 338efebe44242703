package resourcecontroller

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// Unmanaging a node: a node with a trunk that loses security groups for
// pods (the has-trunk-attached label key and the CNINode feature both
// gone) keeps its trunk state for UnmanageDelay, so that a flapping
// feature or the last pod events change nothing; then every branch it
// holds (in use, cooling, given up) is deleted, its trunk state dropped
// and its pod-eni capacity removed, so that enabling it again adopts the
// trunk with no branch left on it (docs/compatibility.md, "Security
// groups for pods"). The trunk ENI stays attached: it goes with the
// instance (delete-on-termination), as on EKS.
//
// Pods still running with a branch keep their annotation (ipamd read it
// at ADD; only the controller's identity may change it where EKS's
// validating webhook runs) and get a Warning event: their branch network
// is gone and deleting the pod is the way out. Should the node get SGP
// back while they run, the trunk rebuild keeps their VLANs until they end.

// unmanaging remembers since when each node with a trunk state has been
// seen without SGP.
type unmanaging struct {
	mu    sync.Mutex
	since map[string]unmanagedAt
}

type unmanagedAt struct {
	gen uint64 // the trunk state seen unmanaged
	at  time.Time
}

func newUnmanaging() *unmanaging { return &unmanaging{since: map[string]unmanagedAt{}} }

// first returns when the trunk state at was first seen unmanaged, now if
// it is this time.
func (u *unmanaging) first(at trunkAt, now time.Time) time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	s, ok := u.since[at.node]
	if !ok || s.gen != at.gen {
		s = unmanagedAt{gen: at.gen, at: now}
		u.since[at.node] = s
	}
	return s.at
}

func (u *unmanaging) clear(node string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	delete(u.since, node)
}

// ReasonBranchDeletedUnmanaged is the Warning on a running pod whose
// branch was deleted because its node lost SGP (ours; EKS has none).
const ReasonBranchDeletedUnmanaged = "BranchENIDeleted"

// ReasonNodeUnmanaged is the Normal event on a node whose trunk state was
// dropped (ours).
const ReasonNodeUnmanaged = "NodeTrunkDeinitialized"

// unmanageNode handles a node without SGP: nothing when it holds no trunk
// state; else, once UnmanageDelay has passed since it was first seen so,
// its branches are deleted and its state dropped.
func (c *Controller) unmanageNode(ctx context.Context, node *corev1.Node) (reconcile.Result, error) {
	info, ok := c.reg.info(node.Name)
	if !ok {
		c.unmanaging.clear(node.Name)
		return reconcile.Result{}, c.dropCapacity(ctx, node)
	}
	now := time.Now()
	if wait := c.unmanaging.first(info.at(), now).Add(c.cfg.UnmanageDelay).Sub(now); wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	t := c.reg.dropAt(info.at())
	c.unmanaging.clear(node.Name)
	if t == nil {
		return reconcile.Result{}, nil // dropped or replaced meanwhile
	}
	inUse := 0
	for uid, bs := range t.pods {
		inUse += len(bs)
		ns, name := splitKey(t.keys[uid])
		ids := make([]string, 0, len(bs))
		for _, b := range bs {
			ids = append(ids, b.ENIID)
		}
		c.rec.event(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uid}}, "Pod", corev1.EventTypeWarning, ReasonBranchDeletedUnmanaged,
			"Node %s no longer uses security groups for pods (label %s and CNINode feature gone): branch ENI %v was deleted and the pod has no branch network; delete the pod to run it with its security groups on another node",
			node.Name, LabelHasTrunk, ids)
	}
	c.cfg.Log.Info("node no longer uses security groups for pods; deleting its branch ENIs and dropping its trunk state",
		"node", node.Name, "trunk", t.trunkID, "inUse", inUse, "cooling", len(t.cooling))
	c.deleteTrunkBranches(ctx, t)
	c.rec.event(ctx, node, "Node", corev1.EventTypeNormal, ReasonNodeUnmanaged,
		"The node no longer uses security groups for pods: %d branch ENIs in use and %d cooling down were deleted; trunk interface %s stays attached", inUse, len(t.cooling), t.trunkID)
	return reconcile.Result{}, c.dropCapacity(ctx, node)
}

// dropCapacity removes the pod-eni capacity of a node without SGP, so the
// scheduler stops placing pods that ask for a branch there.
func (c *Controller) dropCapacity(ctx context.Context, node *corev1.Node) error {
	_, inCap := node.Status.Capacity[PodENIResource]
	_, inAlloc := node.Status.Allocatable[PodENIResource]
	if !inCap && !inAlloc {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"capacity":    map[string]any{PodENIResource: nil},
		"allocatable": map[string]any{PodENIResource: nil},
	}})
	if err != nil {
		return err
	}
	if err := c.c.Status().Patch(ctx, node, ctrl.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("removing %s from node %s: %w", PodENIResource, node.Name, err)
	}
	return nil
}
