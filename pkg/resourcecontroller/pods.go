package resourcecontroller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/vpc-cni/vpc-cni/pkg/apis/vpcresources/v1beta1"
	"github.com/vpc-cni/vpc-cni/pkg/awsutils"
)

// podNodeField indexes pods by spec.nodeName.
const podNodeField = "spec.nodeName"

// BranchCount is how many branch ENIs a pod asks for: the sum of its
// containers' vpc.amazonaws.com/pod-eni requests.
func BranchCount(p *corev1.Pod) int {
	n := int64(0)
	for _, ctr := range p.Spec.Containers {
		if q, ok := ctr.Resources.Requests[PodENIResource]; ok {
			n += q.Value()
		}
	}
	return int(n)
}

func podDone(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// reconcilePod gives a bound pod that asks for branch ENIs its branches and
// annotation, and releases them when the pod is gone or has completed.
func (c *Controller) reconcilePod(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	key := req.String()
	var pod corev1.Pod
	if err := c.c.Get(ctx, req.NamespacedName, &pod); err != nil {
		if !apierrors.IsNotFound(err) {
			return reconcile.Result{}, fmt.Errorf("reading pod %s: %w", key, err)
		}
		for _, ref := range c.reg.podsByKey(key) {
			c.release(ref, key)
		}
		// A pod that never got a branch is not in the registry; its notes
		// go here.
		c.forgetNotes(func(k string) bool { return strings.HasPrefix(k, key+"|") })
		return reconcile.Result{}, nil
	}
	for _, ref := range c.reg.podsByKey(key) {
		if ref.uid != pod.UID { // an older pod of the same name
			c.release(ref, key)
		}
	}
	node := pod.Spec.NodeName
	n := BranchCount(&pod)
	if node == "" || n == 0 {
		return reconcile.Result{}, nil
	}
	if podDone(&pod) {
		c.release(podRef{node: node, uid: pod.UID}, key)
		return reconcile.Result{}, nil
	}
	if pod.DeletionTimestamp != nil || pod.Annotations[PodENIAnnotation] != "" {
		return reconcile.Result{}, nil
	}
	if c.reg.holds(node, pod.UID) {
		return reconcile.Result{}, c.reannotate(ctx, &pod, node)
	}
	info, ok := c.reg.info(node)
	if !ok || info.Gone {
		// The node has no trunk yet (or is not an SGP node, or its Node
		// was deleted): ipamd names that to the pod's ADD; retry until it
		// comes.
		return reconcile.Result{RequeueAfter: c.cfg.RetryDelay}, nil
	}
	return c.allocate(ctx, key, pod.UID, info, n)
}

// allocate makes, associates and annotates a pod's branches; on any
// failure everything made for it is deleted again.
func (c *Controller) allocate(ctx context.Context, key string, uid types.UID, info TrunkInfo, n int) (reconcile.Result, error) {
	// The cache has the pod; its labels decide the groups, so read it
	// fresh, as the webhook's view may be stale.
	var pod corev1.Pod
	nn := types.NamespacedName{}
	nn.Namespace, nn.Name = splitKey(key)
	if err := c.api.Get(ctx, nn, &pod); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("reading pod %s: %w", key, err)
	}
	if pod.UID != uid || pod.Annotations[PodENIAnnotation] != "" {
		return reconcile.Result{}, nil
	}
	m, err := c.match(ctx, &pod)
	if err != nil {
		c.rec.event(ctx, &pod, "Pod", corev1.EventTypeWarning, ReasonBranchAllocationFailed, "failed to allocate branch ENI to pod: %v", err)
		return reconcile.Result{}, err
	}
	groups := m.Groups
	if len(groups) == 0 {
		groups = info.Groups
	} else if err := CheckGroups(m, c.cfg.MaxGroupsPerENI); err != nil {
		if c.warned.first(warnKey(key, uid), err.Error()) {
			c.rec.event(ctx, &pod, "Pod", corev1.EventTypeWarning, ReasonBranchAllocationFailed, "failed to allocate branch ENI to pod: %v", err)
		}
		return reconcile.Result{RequeueAfter: c.cooldown.get()}, nil
	}
	vlans, err := c.reg.reserve(info.at(), n)
	if err != nil {
		if c.warned.first(warnKey(key, uid), err.Error()) {
			c.rec.event(ctx, &pod, "Pod", corev1.EventTypeWarning, ReasonBranchAllocationFailed, "failed to allocate branch ENI to pod: %v", err)
		}
		if errors.Is(err, ErrAtCapacity) {
			return reconcile.Result{RequeueAfter: c.cfg.CooldownTick}, nil
		}
		return reconcile.Result{}, err
	}
	c.tellGroups(ctx, &pod, key, len(m.Groups) == 0, groups)
	start := time.Now()
	made, err := c.makeBranches(ctx, info, vlans, groups)
	observeOp(opCreateBranch, len(vlans), start, err)
	if err != nil {
		c.rollback(ctx, info.at(), vlans, made)
		if awsutils.Code(err) == awsutils.CodeENINotFound {
			c.checkTrunk(ctx, info)
		}
		// One event per distinct EC2 code, not per retry (messages carry
		// request ids).
		if code := awsutils.Code(err); code == "" || c.warned.first(warnKey(key, uid), "ec2:"+code) {
			c.rec.event(ctx, &pod, "Pod", corev1.EventTypeWarning, ReasonBranchAllocationFailed, "failed to allocate branch ENI to pod: %v", err)
		}
		return reconcile.Result{}, err
	}
	if !c.reg.record(info.at(), uid, key, made) {
		// The node went while its branches were made, and its cleanup
		// has not seen them: delete them, or nothing ever does.
		c.cfg.Log.Info("the node went while its pod's branch ENIs were made; deleting them", "pod", key, "node", info.Node)
		c.dropMade(ctx, info.at(), made)
		return reconcile.Result{RequeueAfter: c.cfg.RetryDelay}, nil
	}
	value, err := EncodeAnnotation(made)
	if err == nil {
		err = c.annotate(ctx, &pod, value)
		if err != nil {
			switch applied, known := c.annotated(ctx, nn, uid, value); {
			case applied:
				err = nil // only the answer was lost
			case !known:
				// It may be applied: deleting the branches could leave the
				// annotation naming a deleted ENI. They stay the pod's; its
				// next reconcile writes the annotation again (or releases
				// them if the pod is gone).
				c.rec.event(ctx, &pod, "Pod", corev1.EventTypeWarning, ReasonBranchAnnotationFailed, "failed to annotate pod with branch ENI details: %v", err)
				return reconcile.Result{}, err
			}
		}
	}
	if err != nil {
		c.reg.forget(info.Node, uid)
		c.rollback(ctx, info.at(), vlans, made)
		c.rec.event(ctx, &pod, "Pod", corev1.EventTypeWarning, ReasonBranchAnnotationFailed, "failed to annotate pod with branch ENI details: %v", err)
		return reconcile.Result{}, err
	}
	c.warned.clear(warnKey(key, uid))
	c.rec.event(ctx, &pod, "Pod", corev1.EventTypeNormal, ReasonResourceAllocated, "Allocated %s to the pod", value)
	return reconcile.Result{}, nil
}

// A pod asking for several branches got them made one after another: its
// time to the annotation was the sum of their creates and associations.
// They are made at once now, podBranchCalls at a time; the EC2 client's
// rate limit still paces their calls.

// podBranchCalls bounds the branches of one pod being made at once.
const podBranchCalls = 4

// makeBranches creates and associates one branch per VLAN, several at
// once. On failure it returns, with the first error in VLAN order, every
// branch it made (associated or not); undoing them is the caller's
// (rollback). After a failure no other branch is started, but those under
// way finish: cancelled, a create whose answer was lost would leave an ENI
// nobody knows until the leak GC finds it.
func (c *Controller) makeBranches(ctx context.Context, info TrunkInfo, vlans []int, groups []string) ([]BranchENI, error) {
	made := make([]*BranchENI, len(vlans))
	errs := make([]error, len(vlans))
	slots := make(chan struct{}, podBranchCalls)
	var failed atomic.Bool
	var wg sync.WaitGroup
	for i, vlan := range vlans {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			if failed.Load() {
				return
			}
			made[i], errs[i] = c.makeBranch(ctx, info, vlan, groups)
			if errs[i] != nil {
				failed.Store(true)
			}
		}()
	}
	wg.Wait()
	var out []BranchENI
	for _, b := range made {
		if b != nil {
			out = append(out, *b)
		}
	}
	var first error
	for i, err := range errs {
		switch {
		case err == nil:
		case first == nil:
			first = err
		default:
			c.cfg.Log.Warn("making a branch ENI", "trunk", info.TrunkID, "vlan", vlans[i], "err", err)
		}
	}
	return out, first
}

// makeBranch creates a branch on vlan and associates it with the trunk. A
// branch created but not associated is returned with the error.
func (c *Controller) makeBranch(ctx context.Context, info TrunkInfo, vlan int, groups []string) (*BranchENI, error) {
	eni, err := c.ec2.CreateBranchENI(ctx, awsutils.BranchRequest{
		InstanceID: info.InstanceID, TrunkID: info.TrunkID, VLAN: vlan,
		SubnetID: info.SubnetID, SecurityGroups: groups, ClusterName: c.cfg.ClusterName,
	})
	if err != nil {
		return nil, err
	}
	b := &BranchENI{ENIID: eni.ID, MAC: eni.MAC, VlanID: vlan, SubnetCIDR: info.SubnetCIDR}
	if eni.PrivateIPv4.IsValid() {
		b.PrivateIP = eni.PrivateIPv4.String()
	}
	if len(eni.IPv6) > 0 {
		b.IPv6Addr = eni.IPv6[0].String()
	}
	assoc, err := c.ec2.AssociateBranch(ctx, eni.ID, info.TrunkID, vlan)
	if err != nil {
		return b, err // its association may have been applied though the answer was lost
	}
	b.AssociationID = assoc
	return b, nil
}

// rollback undoes a request that failed, off the pod worker: the branches
// made go to the front of the node's delete queue, due at once, and the
// VLANs of those never made are freed now. A made branch keeps its VLAN
// until its delete succeeds: EC2 may have applied an association whose
// answer was lost, and the VLAN's next branch would be refused until the
// leak GC deleted the stranded one. Deleted in the worker (up to a
// minute each when EC2 was slow), a few such pods held every pod worker
// and no other node's pod got a branch; EKS queues them the same way.
func (c *Controller) rollback(ctx context.Context, at trunkAt, vlans []int, made []BranchENI) {
	c.dropMade(ctx, at, made)
	c.reg.unreserve(at, slices.DeleteFunc(slices.Clone(vlans), func(v int) bool {
		return slices.ContainsFunc(made, func(b BranchENI) bool { return b.VlanID == v })
	}))
}

// dropMade deletes, off the pod worker, branches made for a pod that will
// not hold them (its request failed, or its trunk state went meanwhile):
// through the state's delete queue while the state is kept (their VLANs
// taken until deleted, should a gone Node come back for its instance),
// woken now rather than at its next tick, else in the background
// (droppedbranches.go; a failed delete is retried at each GC pass).
func (c *Controller) dropMade(ctx context.Context, at trunkAt, made []BranchENI) {
	if len(made) == 0 {
		return
	}
	if c.reg.handBack(at, made) {
		c.wakeCooldown()
		return
	}
	c.startBranchDeletes(ctx, at.node, made)
}

// deleteBranch disassociates (when the association is known) and deletes.
func (c *Controller) deleteBranch(ctx context.Context, b BranchENI) error {
	if b.AssociationID != "" {
		if err := c.ec2.DisassociateBranch(ctx, b.AssociationID); err != nil {
			c.cfg.Log.Warn("disassociating a branch ENI before deleting it", "eni", b.ENIID, "err", err)
		}
	}
	return c.ec2.DeleteENI(ctx, b.ENIID)
}

// annotate writes the annotation with a merge patch that is refused if the
// pod was replaced (uid) in between.
func (c *Controller) annotate(ctx context.Context, pod *corev1.Pod, value string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"uid":         pod.UID,
		"annotations": map[string]string{PodENIAnnotation: value},
	}})
	if err != nil {
		return err
	}
	start := time.Now()
	metricAnnotate.WithLabelValues(PodENIAnnotation).Inc()
	err = c.c.Patch(ctx, pod, ctrl.RawPatch(types.MergePatchType, patch))
	observeOp(opAnnotate, 1, start, err)
	if err != nil {
		metricAnnotateErrors.WithLabelValues(PodENIAnnotation).Inc()
		return fmt.Errorf("annotating pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// annotated tells, after an annotate that answered an error, whether the
// pod (same uid) carries value: the API server may have applied the patch,
// and deleting the branches then would leave the annotation naming a
// deleted ENI. known is false when the read fails.
func (c *Controller) annotated(ctx context.Context, nn types.NamespacedName, uid types.UID, value string) (applied, known bool) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var pod corev1.Pod
	if err := c.api.Get(rctx, nn, &pod); err != nil {
		return false, apierrors.IsNotFound(err)
	}
	return pod.UID == uid && pod.Annotations[PodENIAnnotation] == value, true
}

// reannotate writes the annotation of branches a pod already holds: an
// earlier annotate answered an error and could not be confirmed.
func (c *Controller) reannotate(ctx context.Context, pod *corev1.Pod, node string) error {
	value, err := EncodeAnnotation(c.reg.held(node, pod.UID))
	if err != nil {
		return err
	}
	if err := c.annotate(ctx, pod, value); err != nil {
		return err
	}
	c.rec.event(ctx, pod, "Pod", corev1.EventTypeNormal, ReasonResourceAllocated, "Allocated %s to the pod", value)
	return nil
}

// tellGroups sends the pod its SecurityGroupRequested event, once per pod
// and groups: a branch create that fails is retried (with backoff), and
// one event per retry buried the failures' own events. fallback: no
// policy matched and the node's groups are used.
func (c *Controller) tellGroups(ctx context.Context, pod *corev1.Pod, key string, fallback bool, groups []string) {
	msg := fmt.Sprintf("Pod will get the following Security Groups %v", groups)
	typ := corev1.EventTypeNormal
	if fallback {
		msg = fmt.Sprintf("Pod will get the instance security group as the pod didn't match any Security Group from SecurityGroupPolicy: %v", groups)
		typ = corev1.EventTypeWarning
	}
	if c.toldGroups.first(warnKey(key, pod.UID), msg) {
		c.rec.event(ctx, pod, "Pod", typ, ReasonSecurityGroupRequested, "%s", msg)
	}
}

// release queues a pod's branches for deletion after the cool-down.
func (c *Controller) release(ref podRef, key string) {
	if n := c.reg.release(ref.node, ref.uid, time.Now()); n > 0 {
		c.cfg.Log.Info("released branch ENIs; deleting after the cool-down", "pod", key, "node", ref.node, "count", n, "cooldown", c.cooldown.get())
	}
	c.forgetNotes(func(k string) bool { return strings.HasSuffix(k, "|"+string(ref.uid)) })
}

// forgetNotes drops the pod notes (warned, toldGroups) drop selects.
func (c *Controller) forgetNotes(drop func(key string) bool) {
	c.warned.clearWhere(drop)
	c.toldGroups.clearWhere(drop)
}

// warnKey names a pod's notes (c.warned): by name, so that they can be
// dropped once the pod is gone, and uid, so that a new pod of the same
// name starts afresh.
func warnKey(key string, uid types.UID) string { return key + "|" + string(uid) }

// match evaluates the pod's namespace's policies. The ServiceAccount is
// read only when a policy selects by it, so a missing ServiceAccount fails
// only pods whose groups depend on it. Policies are read uncached: a pod
// created right after its policy must not be admitted (or reconciled)
// against a cache that has not seen the policy yet, or it would run
// without its groups.
func (c *Controller) match(ctx context.Context, pod *corev1.Pod) (Match, error) {
	r := ctrl.Reader(c.c)
	if c.api != nil {
		r = c.api
	}
	var list v1beta1.SecurityGroupPolicyList
	if err := r.List(ctx, &list, ctrl.InNamespace(pod.Namespace)); err != nil {
		if meta.IsNoMatchError(err) {
			return Match{}, nil
		}
		return Match{}, fmt.Errorf("listing SecurityGroupPolicies in %s: %w", pod.Namespace, err)
	}
	var saLabels map[string]string
	for _, p := range list.Items {
		if p.Spec.ServiceAccountSelector == nil {
			continue
		}
		name := pod.Spec.ServiceAccountName
		if name == "" {
			name = "default"
		}
		var sa corev1.ServiceAccount
		if err := r.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: name}, &sa); err != nil {
			return Match{}, fmt.Errorf("policy %s selects by service account, reading ServiceAccount %s/%s: %w", p.Name, pod.Namespace, name, err)
		}
		saLabels = sa.Labels
		break
	}
	m := MatchPolicies(pod.Labels, saLabels, list.Items)
	for _, inv := range m.Invalid {
		c.cfg.Log.Warn("skipping an unusable SecurityGroupPolicy", "namespace", pod.Namespace, "policy", inv)
	}
	return m, nil
}

func splitKey(key string) (ns, name string) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i], key[i+1:]
		}
	}
	return "", key
}
