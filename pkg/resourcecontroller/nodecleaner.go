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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
	"github.com/vpc-cni/vpc-cni/pkg/k8s"
)

// The node-termination cleaner: once a Node is gone and its CNINode is
// being deleted (the finalizer holds it), the ENIs EC2 still has for the
// node's instance are deleted: its branch ENIs (a trunk this process does
// not hold, in any status) and every other available ENI tagged with the
// instance and owned by the controller or the CNI (docs/compatibility.md,
// "Security groups for pods"). The finalizer is removed once they are
// gone (or left to a background job, deleteGoneNodeENIs), so a cleanup
// cut short by a failure or a restart is done again.

// nodeCleanBusyDelay is how soon a gone node is looked at again when every
// cleanup slot is taken.
const nodeCleanBusyDelay = 10 * time.Second

// nodeCleaner bounds the cleanups running at once, one per node.
type nodeCleaner struct {
	slots   chan struct{}
	mu      sync.Mutex
	running map[string]bool
}

func newNodeCleaner(n int) *nodeCleaner {
	return &nodeCleaner{slots: make(chan struct{}, n), running: map[string]bool{}}
}

// start takes a slot for node: false, busy when all are taken; false,
// false when node's cleanup already runs.
func (n *nodeCleaner) start(node string) (started, busy bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.running[node] {
		return false, false
	}
	select {
	case n.slots <- struct{}{}:
	default:
		return false, true
	}
	n.running[node] = true
	return true, false
}

// wait takes a slot for key, waiting for one; false when ctx ends first.
func (n *nodeCleaner) wait(ctx context.Context, key string) bool {
	select {
	case n.slots <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.running[key] = true
	return true
}

func (n *nodeCleaner) done(node string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.running, node)
	<-n.slots
}

// goneNodeENIs picks, of the owned ENIs tagged with a gone node's
// instance, those to delete: branches whose trunk no live node holds (in
// use or not: the pods went with the node) and every other available ENI.
func goneNodeENIs(found []awsutils.ENI, trunkHeld func(string) bool) []string {
	var ids []string
	for _, e := range found {
		if trunk, ok := e.Tags[awsutils.TagTrunkENIID]; ok {
			if !trunkHeld(trunk) {
				ids = append(ids, e.ID)
			}
			continue
		}
		if e.Status == "available" {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

// cleanGoneNode starts the cleanup of a Node that is gone, if its CNINode
// is being deleted.
func (c *Controller) cleanGoneNode(ctx context.Context, name string) (reconcile.Result, error) {
	cn := &k8s.CNINode{}
	if err := c.c.Get(ctx, ctrl.ObjectKey{Name: name}, cn); err != nil {
		if apierrors.IsNotFound(err) {
			c.deinitOver.clear(name) // nothing left to clean up
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("reading CNINode %s: %w", name, err)
	}
	if cn.DeletionTimestamp == nil || !slices.Contains(cn.Finalizers, CNINodeFinalizer) {
		return reconcile.Result{}, nil // its deletion (the Node's garbage collection) brings it back here
	}
	instanceID := cn.Spec.Tags[awsutils.TagInstanceID]
	if cn.Labels[labelOS] != "linux" || instanceID == "" {
		return reconcile.Result{}, c.dropFinalizer(ctx, cn)
	}
	if busy := c.startNodeCleanup(ctx, name, cn.UID, instanceID); busy {
		return reconcile.Result{RequeueAfter: nodeCleanBusyDelay}, nil
	}
	return reconcile.Result{}, nil
}

// startNodeCleanup runs the cleanup of the ENIs of instanceID, whose
// CNINode uid is being deleted, unless one runs for name already; busy
// when every slot is taken.
func (c *Controller) startNodeCleanup(ctx context.Context, name string, uid types.UID, instanceID string) (busy bool) {
	started, busy := c.cleaner.start(name)
	if started {
		// ctx is the controller's: it outlives this reconcile (no
		// ReconciliationTimeout is set) and ends with the manager.
		go c.runNodeCleanup(ctx, name, uid, instanceID)
	}
	return busy
}

// runNodeCleanup deletes the gone node's ENIs within NodeCleanTimeout and
// then lets its CNINode go; on failure the node is looked at again after
// GCInterval.
func (c *Controller) runNodeCleanup(ctx context.Context, name string, uid types.UID, instanceID string) {
	cctx, cancel := context.WithTimeout(ctx, c.cfg.NodeCleanTimeout)
	err := c.deleteGoneNodeENIs(cctx, name, instanceID)
	if err == nil {
		err = c.releaseCNINode(cctx, name, uid)
	}
	cancel()
	c.cleaner.done(name)
	if err == nil {
		return
	}
	metricNodeCleanFailures.Inc()
	c.cfg.Log.Warn("cleaning up the ENIs of a deleted node; retrying", "node", name, "instance", instanceID, "in", c.cfg.GCInterval, "err", err)
	t := time.NewTimer(c.cfg.GCInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return
	case <-t.C:
	}
	select {
	case c.kick <- event.GenericEvent{Object: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}}:
	case <-ctx.Done():
	}
}

// deleteGoneNodeENIs runs one paged describe of the instance's owned ENIs
// and deletes those goneNodeENIs picks but a dropped trunk state's
// background job deletes already: the name's new instance waits for this
// cleanup (its CNINode is made once the old one is gone), not for those
// (one EC2 call each); a restart before the job is done leaves them to
// the sweep at start (lostbranches.go). It stops if the node is registered
// again for the instance meanwhile (nodeBack, checked before each delete):
// the ENIs are then the live node's (its pods' branches, a trunk or an
// ipamd ENI between create and attach), and the cleanup ends.
func (c *Controller) deleteGoneNodeENIs(ctx context.Context, name, instanceID string) error {
	found, err := c.ec2.OwnedENIs(ctx, awsutils.OwnedENIsQuery{VPCID: c.cfg.VPCID, InstanceID: instanceID})
	if err != nil {
		return fmt.Errorf("ENIs of deleted node %s: %w", name, err)
	}
	var errs []error
	handed := 0
	for _, id := range goneNodeENIs(found, c.reg.trunkHeld) {
		if c.deleting.has(id) {
			handed++
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, err) // timed out or stopping: retried as a whole
			break
		}
		back, err := c.nodeBack(ctx, name, instanceID)
		if err != nil {
			errs = append(errs, err)
			break
		}
		if back {
			c.cfg.Log.Info("deleted node registered again for its instance; leaving its ENIs", "node", name, "instance", instanceID)
			break
		}
		if err := c.ec2.DeleteENI(ctx, id); err != nil {
			errs = append(errs, err)
			continue
		}
		c.cfg.Log.Info("deleted an ENI of a deleted node", "node", name, "instance", instanceID, "eni", id)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deleting the ENIs of deleted node %s: %w", name, err)
	}
	if handed > 0 {
		c.cfg.Log.Info("leaving the branch ENIs a background job deletes", "node", name, "instance", instanceID, "count", handed)
	}
	return nil
}

// nodeBack reports whether a Node of this name exists again for the
// instance. It reads the API server,
// not the cache, which may not have the new Node yet: the delete that
// follows is the last chance. What is left is the time between this read
// and EC2's delete (one API call); EC2 has no conditional delete, and the
// new node's ipamd makes no ENI before its Node exists.
func (c *Controller) nodeBack(ctx context.Context, name, instanceID string) (bool, error) {
	back, _, err := c.nodeNow(ctx, name, instanceID)
	return back, err
}

// nodeNow is nodeBack that also reports a Node of this name for another
// instance (taken), from the same read.
func (c *Controller) nodeNow(ctx context.Context, name, instanceID string) (back, taken bool, err error) {
	var node corev1.Node
	if err := c.api.Get(ctx, ctrl.ObjectKey{Name: name}, &node); err != nil {
		if apierrors.IsNotFound(err) {
			return false, false, nil
		}
		return false, false, fmt.Errorf("reading node %s: %w", name, err)
	}
	if node.Spec.ProviderID == "" {
		// Registered again before its providerID is set (a kubelet with
		// an external cloud provider): which instance it is, is not known
		// yet; a delete now may take running pods' ENIs.
		return false, false, fmt.Errorf("node %s: %w", name, errNodeIdentityUnknown)
	}
	back = InstanceIDFromProviderID(node.Spec.ProviderID) == instanceID
	return back, !back, nil
}

// errNodeIdentityUnknown: a Node of a gone node's name exists without a
// providerID yet; its cleanup waits for it (retried after GCInterval).
var errNodeIdentityUnknown = errors.New("registered again without a providerID yet")
