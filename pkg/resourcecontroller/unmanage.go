package resourcecontroller

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// Unmanaging a node: a node with a trunk that loses security groups for
// pods (the has-trunk-attached label key and the CNINode feature both
// gone) keeps its trunk state for DeinitDelay, so that a flapping
// feature or the last pod events change nothing; then every branch it
// holds (in use, cooling, given up) is deleted, its trunk state dropped
// and its pod-eni capacity removed, so that enabling it again adopts the
// trunk with no branch left on it (docs/compatibility.md, "Security
// groups for pods"). The trunk ENI stays attached: it goes with the
// instance (delete-on-termination), as on EKS.
//
// Pods still running with a branch keep their annotation (ipamd read it
// at ADD; only the controller's identity may change it where EKS's
// validating webhook runs) and get a Warning event once the deletes were
// tried: deleting the pod is the way out. It names what EC2 did: a
// branch whose delete EC2 refused still exists (retried with the GC) and
// was told "deleted" before. Should the node get SGP back while they run,
// the trunk rebuild keeps their VLANs until they end, and a branch still
// in EC2 holds its VLAN and counts against the limit until it is gone.

// unmanaging remembers since when each node has been seen without SGP or
// gone (nodegone.go): both wait DeinitDelay, counted from the first.
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
// state and advertises no pod-eni; else, once DeinitDelay has passed
// since it was first seen so, its branches are deleted and its state
// dropped. A node that still advertises pod-eni without a trunk state lost
// SGP before this process knew its trunk (a restart in between): its
// branches are found in EC2 by its instance.
func (c *Controller) unmanageNode(ctx context.Context, node *corev1.Node, instanceID string) (reconcile.Result, error) {
	info, ok := c.reg.info(node.Name)
	_, advertised := node.Status.Capacity[PodENIResource]
	if !ok && !advertised {
		c.unmanaging.clear(node.Name)
		return reconcile.Result{}, nil
	}
	at := trunkAt{node: node.Name} // gen 0: no trunk state
	if ok {
		at = info.at()
	}
	now := time.Now()
	if wait := c.unmanaging.first(at, now).Add(c.cfg.DeinitDelay).Sub(now); wait > 0 {
		return reconcile.Result{RequeueAfter: wait}, nil
	}
	if !ok {
		if err := c.unmanageUnknown(ctx, node, instanceID); err != nil {
			return reconcile.Result{}, err
		}
		c.unmanaging.clear(node.Name)
		return reconcile.Result{}, c.dropCapacity(ctx, node)
	}
	// Capacity first, so the scheduler stops placing branch pods here;
	// the deletes then run in the background (gonebranches.go): a node
	// with many branches and slow EC2 deletes held a Node worker.
	if err := c.dropCapacity(ctx, node); err != nil {
		return reconcile.Result{}, err
	}
	node = node.DeepCopy()
	if wait := c.startTrunkJob(ctx, at, func(jctx context.Context, t *trunk) { c.unmanageTrunk(ctx, jctx, node, t) }, nil); wait {
		return reconcile.Result{RequeueAfter: nodeCleanBusyDelay}, nil
	}
	c.unmanaging.clear(node.Name)
	return reconcile.Result{}, nil
}

// unmanageTrunk deletes the branches of a dropped trunk state of a node
// that lost SGP, telling each pod what EC2 did once its own deletes are
// done, then the node: a branch
// whose delete EC2 refused still exists (and, its disassociate refused
// too, still carries the pod's traffic) until the GC retry deletes it.
// The deletes run under jctx, cut short when another instance registers
// the name (goneJobs.cutFor): the rest, the delete in flight among them,
// go to the background deletes, so the new instance's trunk does not wait
// for EC2 to answer the old one's (the new node's reconcile waits for the
// job). ctx is the controller's.
func (c *Controller) unmanageTrunk(ctx, jctx context.Context, node *corev1.Node, t *trunk) {
	inUse := 0
	for _, bs := range t.pods {
		inUse += len(bs)
	}
	c.cfg.Log.Info("node no longer uses security groups for pods; deleting its branch ENIs and dropping its trunk state",
		"node", node.Name, "trunk", t.trunkID, "inUse", inUse, "cooling", len(t.cooling))
	// Each pod is told once its own deletes are done (podfates.go).
	owner := map[string]*corev1.Pod{}
	for uid, bs := range t.pods {
		ns, name := splitKey(t.keys[uid])
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uid}}
		for _, b := range bs {
			owner[b.ENIID] = p
		}
	}
	fates := newPodFates(trunkBranches(t), owner)
	left, failed := c.deleteTrunkBranchesUnless(jctx, t, nil, func(b BranchENI, err error) {
		if p, ids, failed, last := fates.done(b, err); last {
			c.tellUnmanaged(ctx, p, node.Name, ids, failed)
		}
	})
	if context.Cause(jctx) == errNameTaken {
		// The Node and its pods went with the old instance: nothing is
		// left to tell.
		n := c.startBranchDeletes(ctx, node.Name, left)
		c.cfg.Log.Info("node name registered again by another instance while the branch ENIs it lost SGP with were deleted; the rest are deleted in the background",
			"node", node.Name, "instance", t.instanceID, "count", n)
		return
	}
	if len(failed) == 0 {
		c.rec.event(ctx, node, "Node", corev1.EventTypeNormal, ReasonNodeUnmanaged,
			"The node no longer uses security groups for pods: %d branch ENIs in use and %d cooling down were deleted; trunk interface %s stays attached", inUse, len(t.cooling), t.trunkID)
		return
	}
	c.rec.event(ctx, node, "Node", corev1.EventTypeNormal, ReasonNodeUnmanaged,
		"The node no longer uses security groups for pods: of its %d branch ENIs in use and %d cooling down, EC2 refused to delete %d (%v), retried at each GC pass; trunk interface %s stays attached",
		inUse, len(t.cooling), len(failed), branchENIIDs(failed), t.trunkID)
}

// tellUnmanaged tells a running pod of a node that lost SGP what became
// of its branches ids: deleted, or still in EC2 when their delete is among
// failed.
func (c *Controller) tellUnmanaged(ctx context.Context, pod *corev1.Pod, node string, ids []string, failed []BranchENI) {
	refused := branchENIIDs(failed)
	var deleted, left []string
	for _, id := range ids {
		if slices.Contains(refused, id) {
			left = append(left, id)
		} else {
			deleted = append(deleted, id)
		}
	}
	var what []string
	if len(deleted) > 0 {
		what = append(what, fmt.Sprintf("branch ENI %v was deleted and the pod has no branch network", deleted))
	}
	if len(left) > 0 {
		what = append(what, fmt.Sprintf("EC2 refused to delete branch ENI %v, which is retried at each GC pass", left))
	}
	c.rec.event(ctx, pod, "Pod", corev1.EventTypeWarning, ReasonBranchDeletedUnmanaged,
		"Node %s no longer uses security groups for pods (label %s and CNINode feature gone): %s; delete the pod to run it with its security groups on another node",
		node, LabelHasTrunk, strings.Join(what, "; "))
}

// branchENIIDs lists the ENI ids of bs.
func branchENIIDs(bs []BranchENI) []string {
	out := make([]string, 0, len(bs))
	for _, b := range bs {
		out = append(out, b.ENIID)
	}
	return out
}

// unmanageUnknown starts the deletes of the branches EC2 holds for the
// instance of a node that lost SGP while no trunk state of it was in
// memory: one paged describe; a branch a running pod's annotation names
// is disassociated first and the pod told. The deletes run in the
// background (droppedbranches.go): one by one here, they held a Node
// worker for seconds each when EC2 is slow, and other nodes' trunks, hence
// their pods' branches, waited. A failed one is retried at each GC pass,
// and after a restart found by the start-up sweep (lostbranches.go).
func (c *Controller) unmanageUnknown(ctx context.Context, node *corev1.Node, instanceID string) error {
	found, err := c.ec2.TaggedInstanceENIs(ctx, instanceID, awsutils.BranchDescription)
	if err != nil {
		return fmt.Errorf("branch ENIs of node %s, which lost SGP: %w", node.Name, err)
	}
	if len(found) == 0 {
		return nil
	}
	var pods corev1.PodList
	if err := c.c.List(ctx, &pods, ctrl.MatchingFields{podNodeField: node.Name}); err != nil {
		return fmt.Errorf("listing the pods of node %s: %w", node.Name, err)
	}
	type claim struct {
		pod   *corev1.Pod
		assoc string
	}
	claims := map[string]claim{}
	for i := range pods.Items {
		p := &pods.Items[i]
		if podDone(p) || p.Annotations[PodENIAnnotation] == "" {
			continue
		}
		enis, err := DecodeAnnotation(p.Annotations[PodENIAnnotation])
		if err != nil {
			continue
		}
		for _, e := range enis {
			claims[e.ENIID] = claim{pod: p, assoc: e.AssociationID}
		}
	}
	bs := make([]BranchENI, 0, len(found))
	owner := map[string]*corev1.Pod{}
	for _, e := range found {
		cl := claims[e.ID]
		bs = append(bs, BranchENI{ENIID: e.ID, AssociationID: cl.assoc})
		if cl.pod != nil {
			owner[e.ID] = cl.pod
		}
	}
	// Each pod is told what EC2 did once the job has tried its own
	// deletes (podfates.go). None taken: a job of an earlier pass (a
	// failed capacity removal) deletes them and tells its pods. The job
	// reads the node's name, not node: the capacity removal that follows
	// writes the API server's answer into it.
	name := node.Name
	track := func(taken []BranchENI) func(BranchENI, error) {
		fates := newPodFates(taken, owner)
		return func(b BranchENI, err error) {
			if p, ids, failed, last := fates.done(b, err); last {
				c.tellUnmanaged(ctx, p, name, ids, failed)
			}
		}
	}
	if c.startBranchDeletesEach(ctx, node.Name, bs, track) == 0 {
		return nil
	}
	c.cfg.Log.Info("node no longer uses security groups for pods; deleting its branch ENIs", "node", node.Name, "instance", instanceID, "count", len(bs))
	c.rec.event(ctx, node, "Node", corev1.EventTypeNormal, ReasonNodeUnmanaged,
		"The node no longer uses security groups for pods: its %d branch ENIs are being deleted", len(found))
	return nil
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
		return fmt.Errorf("encoding the pod-eni removal of node %s: %w", node.Name, err)
	}
	if err := c.c.Status().Patch(ctx, node, ctrl.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("removing %s from node %s: %w", PodENIResource, node.Name, err)
	}
	return nil
}
