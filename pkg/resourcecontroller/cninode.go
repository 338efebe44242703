package resourcecontroller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// CNINodeFinalizer is on every CNINode the controller makes (EKS's name),
// so that a CNINode is not gone before the controller has seen it go: while
// its Node exists it is made again, and once the Node is gone the node's
// branches are deleted first (docs/compatibility.md, "Security groups for
// pods").
const CNINodeFinalizer = "networking.k8s.aws/resource-cleanup"

// cninodeRecreateDelay is how soon a node whose CNINode is being deleted is
// looked at again, to make the CNINode anew.
const cninodeRecreateDelay = 500 * time.Millisecond

// cninodeDeletionWait is how long a CNINode of a live Node may take to go
// once its finalizer is removed before a CNINodeDeletionFailed event says
// so (EKS's 3 s); the controller keeps waiting to make it again.
const cninodeDeletionWait = 3 * time.Second

// errCNINodeDeleting: the node's CNINode is going; its finalizer was
// removed and the node should be reconciled again shortly.
var errCNINodeDeleting = errors.New("CNINode is being deleted")

// errOldInstanceCleanup: the node's CNINode is another instance's, whose
// cleanup runs (or waits to be retried); its end reconciles the node.
var errOldInstanceCleanup = errors.New("CNINode of the previous instance is being cleaned up")

// remaking tracks the CNINodes of live Nodes being made again: since when
// the one being deleted (by uid) has been waited for, and whether that was
// told.
type remaking struct {
	mu sync.Mutex
	m  map[string]remake
}

type remake struct {
	uid   types.UID
	since time.Time
	told  bool
}

func newRemaking() *remaking { return &remaking{m: map[string]remake{}} }

// overdue records that the CNINode uid of node is waited for and reports,
// once, that wait has lasted longer than cninodeDeletionWait.
func (r *remaking) overdue(node string, uid types.UID, now time.Time, wait time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	m, ok := r.m[node]
	if !ok || m.uid != uid {
		m = remake{uid: uid, since: now}
	}
	tell := !m.told && now.Sub(m.since) >= wait
	m.told = m.told || tell
	r.m[node] = m
	return tell
}

func (r *remaking) has(node string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.m[node]
	return ok
}

func (r *remaking) done(node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, node)
}

// keepCNINode handles an existing CNINode of a live Node of instanceID:
// one being deleted gets its finalizer removed (errCNINodeDeleting: make it
// again once gone), after the cleanup of its instance's ENIs when it names
// another instance; one without the finalizer gets it back.
func (c *Controller) keepCNINode(ctx context.Context, cn *k8s.CNINode, instanceID string) error {
	if old := cn.Spec.Tags[awsutils.TagInstanceID]; cn.DeletionTimestamp != nil && old != "" && old != instanceID &&
		cn.Labels[labelOS] == "linux" && slices.Contains(cn.Finalizers, CNINodeFinalizer) {
		// The name was registered again by another instance before the
		// old one's cleanup ran (it waits DeinitDelay): the CNINode is the
		// old instance's, whose ENIs are cleaned up before it goes, as for
		// any gone node (nodecleaner.go).
		// Not looked at again on a timer: the CNINode's deletion once the
		// cleanup lets it go, or the cleanup's retry after GCInterval,
		// brings the node back here.
		if busy := c.startNodeCleanup(ctx, cn.Name, cn.UID, old); busy {
			return errCNINodeDeleting
		}
		return errOldInstanceCleanup
	}
	if cn.DeletionTimestamp != nil {
		// The Node was seen in the cache, which can lag its deletion: the
		// Node's garbage collection deletes the CNINode at once, and the
		// two informers deliver in no set order. Dropping the finalizer
		// then would let the CNINode go without the gone node's cleanup
		// (nodecleaner.go), so the API server has the last word.
		if gone, err := c.nodeGoneLive(ctx, cn.Name); err != nil {
			return err
		} else if gone {
			return errCNINodeDeleting // the Node's deletion event takes it to nodeGone
		}
		// The new CNINode keeps the features ipamd declared: without
		// SecurityGroupsForPods the node would be unmanaged (unmanage.go).
		c.features.put(cn.Name, cn.Spec.Features)
		if err := c.dropFinalizer(ctx, cn); err != nil {
			return err
		}
		if c.remaking.overdue(cn.Name, cn.UID, time.Now(), cninodeDeletionWait) {
			c.rec.event(ctx, cn, "CNINode", corev1.EventTypeWarning, ReasonCNINodeDeletionFailed,
				"CNINode %s was not deleted within %s of the removal of finalizer %s (finalizers left: %v); it is made again once it is gone",
				cn.Name, cninodeDeletionWait, CNINodeFinalizer, cn.Finalizers)
		}
		c.cfg.Log.Info("CNINode deleted while its node exists; making it again", "node", cn.Name)
		return errCNINodeDeleting
	}
	if slices.Contains(cn.Finalizers, CNINodeFinalizer) {
		return nil
	}
	orig := cn.DeepCopy()
	cn.Finalizers = append(cn.Finalizers, CNINodeFinalizer)
	if err := c.c.Patch(ctx, cn, ctrl.MergeFromWithOptions(orig, ctrl.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("adding finalizer %s to CNINode %s: %w", CNINodeFinalizer, cn.Name, err)
	}
	return nil
}

// nodeGoneLive reports whether the API server has no Node of this name.
func (c *Controller) nodeGoneLive(ctx context.Context, name string) (bool, error) {
	if err := c.api.Get(ctx, ctrl.ObjectKey{Name: name}, &corev1.Node{}); err != nil {
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, fmt.Errorf("reading node %s: %w", name, err)
	}
	return false, nil
}

// releaseCNINode removes the finalizer from the CNINode of a Node that is
// gone, after its ENIs were deleted, so the CNINode can go with it. A
// CNINode made since for a new Node of that name (uid differs) is left.
func (c *Controller) releaseCNINode(ctx context.Context, name string, uid types.UID) error {
	cn := &k8s.CNINode{}
	if err := c.c.Get(ctx, ctrl.ObjectKey{Name: name}, cn); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading CNINode %s: %w", name, err)
	}
	if cn.UID != uid {
		return nil
	}
	return c.dropFinalizer(ctx, cn)
}

func (c *Controller) dropFinalizer(ctx context.Context, cn *k8s.CNINode) error {
	if !slices.Contains(cn.Finalizers, CNINodeFinalizer) {
		return nil
	}
	orig := cn.DeepCopy()
	cn.Finalizers = slices.DeleteFunc(cn.Finalizers, func(f string) bool { return f == CNINodeFinalizer })
	if err := c.c.Patch(ctx, cn, ctrl.MergeFromWithOptions(orig, ctrl.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("removing finalizer %s from CNINode %s: %w", CNINodeFinalizer, cn.Name, err)
	}
	return nil
}

// featureKeep carries the features of deleted CNINodes of live Nodes over
// to the ones made again in their place.
type featureKeep struct {
	mu sync.Mutex
	m  map[string][]k8s.CNINodeFeature
}

func newFeatureKeep() *featureKeep { return &featureKeep{m: map[string][]k8s.CNINodeFeature{}} }

func (f *featureKeep) put(node string, fs []k8s.CNINodeFeature) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(fs) > 0 {
		f.m[node] = slices.Clone(fs)
	}
}

func (f *featureKeep) get(node string) []k8s.CNINodeFeature {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.m[node])
}

func (f *featureKeep) done(node string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, node)
}
